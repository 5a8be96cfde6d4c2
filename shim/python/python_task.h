#pragma once
// The asyncio task holding a pool checkout: a weak reference to it, taken
// when the checkout is recorded (a call from Python, GIL held), and the
// task's suspended coroutine stack read from it later (a checkout_threshold
// alert on the worker thread, a pool_exhausted snapshot), under the GIL,
// through C getters only: no Python code runs (see python_async.cpp).
#include <cstdint>

#include "collector/core/stack_depot.h"

namespace connleak::shim {

// A new weak reference to `task` (a PyObject*), the caller holding the GIL;
// null when the object takes none or there is no interpreter.
void* task_weakref(void* task);

// Drops a reference from task_weakref: under the GIL the caller holds, else
// under PyGILState_Ensure; leaked (never touched) while the interpreter is
// finalizing or after it is gone.
void drop_task_weakref(void* ref);

// The suspended stack of the task holding open checkout `checkout_id`,
// innermost frame first, interned in script_depot(); 0 when the checkout has
// ended, has no task, the task has finished or the interpreter is finalizing.
// `running` is set when the task is being stepped right now: its stack is
// then its thread's (capture_thread_python_stack). Any thread.
StackId capture_holder_task_stack(std::uint64_t checkout_id, int depth, bool* running);

}  // namespace connleak::shim
