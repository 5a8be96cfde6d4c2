#pragma once
// The Python stack of the calling thread, when the host is CPython. Found at
// run time through the C API (never linked), usable with the GIL held or
// released by the driver (psycopg2 and mysqlclient release it around connect
// and close; psycopg_c holds it). Skips, rather than risks: no interpreter,
// interpreter finalizing, a thread with no Python state, a sub-interpreter.
#include "collector/stack_depot.h"

namespace connleak::shim {

// Interned in python_depot(); 0 when there is no Python stack to take.
StackId capture_python_stack(int depth);
// True while CPython is shutting down: a close seen then was done by the
// interpreter tearing down module globals, not by the program.
bool python_finalizing();

}  // namespace connleak::shim
