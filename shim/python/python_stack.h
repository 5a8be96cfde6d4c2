#pragma once
// The Python stack of the calling thread, when the host is CPython. Found at
// run time through the C API (never linked), usable with the GIL held or
// released by the driver (psycopg2 and mysqlclient release it around connect
// and close; psycopg_c holds it). Skips, rather than risks: no interpreter,
// interpreter finalizing, a thread with no Python state, a sub-interpreter.
#include "collector/core/script_frames.h"
#include "collector/core/stack_depot.h"

namespace connleak::shim {

// True when the process runs CPython (its C API is there); cached.
bool python_present();
// Interned in script_depot(); 0 when there is no Python stack to take.
StackId capture_python_stack(int depth);
// True while CPython is shutting down: a close seen then was done by the
// interpreter tearing down module globals, not by the program.
bool python_finalizing();

// The calling thread's PyThreadState (an identity for a checkout's holder), or
// null outside Python.
const void* current_python_thread();
// The current Python stack of another thread (`holder`, from
// current_python_thread()), read under PyGILState_Ensure from any thread: only
// frames are read, no Python code runs. 0 if that thread has gone or is idle.
StackId capture_thread_python_stack(const void* holder, int depth);

// A frame object (borrowed; the caller holds the GIL) as an interned frame,
// through the same per-code-object cache as the captures; null when it has no
// code or the C API is not there.
const ScriptFrame* python_frame_info(void* frame);

}  // namespace connleak::shim
