#pragma once
// Perl, PHP and Ruby close every connection the program still holds while they shut
// down (Perl's global destruction in perl_destruct, PHP's request and module
// shutdown, Ruby's cleanup freeing the objects left at exit), after the
// program's last line: the program never closed those,
// like CPython's finalization (python_finalizing()).
namespace connleak::shim {

// True when the calling thread runs inside one of those runtimes' exported
// teardown functions. Found from the thread's return addresses, not from the
// runtime's data structures: nothing version-specific is read.
bool runtime_tearing_down();

}  // namespace connleak::shim
