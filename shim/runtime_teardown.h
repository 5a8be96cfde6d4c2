#pragma once
// Perl and PHP close every connection the program still holds while they shut
// down (Perl's global destruction in perl_destruct, PHP's request and module
// shutdown), after the program's last line: the program never closed those,
// like CPython's finalization (python_finalizing()).
namespace connleak::shim {

// True when the calling thread runs inside one of those runtimes' exported
// teardown functions. Found from the thread's return addresses, not from the
// runtime's data structures: nothing version-specific is read.
bool runtime_tearing_down();

// True when Ruby's garbage collector runs on this thread (rb_during_gc(),
// public C API: one flag read). Ruby frees every object still referenced at
// exit inside its GC (rb_objspace_call_finalizer, "running data/file
// finalizers are part of garbage collection"), so a connection closed there
// was never closed by the program, whether dropped during the run or held
// until exit: the two cannot be told apart without Ruby's internals.
bool ruby_gc_closing();

}  // namespace connleak::shim
