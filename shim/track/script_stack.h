#pragma once
// The calling thread's stack in the host's own language (Python, and each
// interpreter the shim can read), beside the native one. Every runtime is one
// row of a table in script_stack.cpp: a cheap test for its presence and a
// capture that only reads the interpreter's memory, never runs its code.
#include "collector/core/script_frames.h"
#include "collector/core/stack_depot.h"

namespace connleak::shim {

struct ScriptRuntime {
  ScriptLanguage language;
  // Asked until one runtime answers true; each caches its own answer (a
  // dlsym at most once), since this runs on every capture in a C host.
  bool (*present)();
  // Interned in script_depot(); 0 when there is nothing to take (a thread
  // that never ran the language, the interpreter shutting down...).
  StackId (*capture)(int depth);
};

// The first present runtime's capture (and set_script_host for the report);
// 0 in a host with none.
StackId capture_script_stack(int depth);

}  // namespace connleak::shim
