#pragma once
// libbacktrace, one state per loaded module, each made the first time a frame
// in that module is symbolized. A single libbacktrace state reads the symbol
// table and the whole DWARF of every loaded module when it is first used (the
// C library's separate debug file, the loader's, the shim's own symbol table),
// whether or not any stack has a frame there; a state per module reads only
// the modules that the reported stacks pass through.
//
// What a lookup returns is what Boost.Stacktrace's frame gave with one state
// for the whole process: modules never overlap, so a PC is found in its own
// module's data either way.
#include <cstddef>
#include <cstdint>
#include <string>

namespace connleak {

struct BacktraceInfo {
  // The module's symbol table's name for the PC, else the outermost function
  // DWARF names there; not demangled (the caller has dladdr's name first, as
  // Boost's frame::name() did). Empty when none.
  std::string function;
  // The last file and line libbacktrace reports for the PC (the calling
  // statement in the outermost function when calls were inlined).
  std::string file;
  std::size_t line = 0;
};

// `pc` is the address of the call (a return address minus one).
BacktraceInfo module_backtrace_info(std::uintptr_t pc);

// How many modules libbacktrace has read so far in this process (tests).
std::size_t module_backtrace_modules_read();

}  // namespace connleak
