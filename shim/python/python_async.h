#pragma once
// The asyncio part of a Python stack: the frames of the tasks waiting for the
// task the calling thread runs. A thread's running frames stop at the current
// task's coroutine (under them is the event loop), and on Python <= 3.11
// asyncio.wait_for runs its awaitable in a new task: for asyncpg.connect and
// aiomysql.connect the program's own coroutine (`await asyncpg.connect(...)`)
// is suspended in another task and would be missing from the stack.
// Found through the C API at run time like the rest of python_stack.cpp; no
// Python code is run (only C getters and C functions of objects whose exact
// type is known), no exception or reference is left behind.
#include "collector/core/stack_depot.h"

namespace connleak::shim {

struct AwaiterChain {
  // The frame object of the current task's coroutine (T.get_coro().cr_frame):
  // the awaiter frames go right under it. For identity only: no reference held.
  const void* anchor = nullptr;
  // Frame objects, new references, innermost first: the suspended coroutine
  // frames of the task awaiting the current one, then of its own awaiter...
  void* frames[kMaxFrames];
  int count = 0;
};

// With the GIL held and the error indicator saved (PyErr_Fetch) by the caller.
// Fills at most `max_frames` frames; false, with nothing to release, when the
// thread is not running an asyncio Task or the C API needed is missing.
bool collect_awaiter_chain(AwaiterChain& out, int max_frames);
// The suspended coroutine frames of `task` (a borrowed asyncio.Task), as
// asyncio.Task.get_stack() walks them (coroutine, then what it awaits, ...),
// innermost first, as new references the caller drops (GIL still held). With
// the GIL held and the error indicator saved. 0: not an _asyncio.Task, done,
// or the C API needed is missing; -1: the task is running now (its frames are
// its thread's current stack).
int collect_task_frames(void* task, void** frames, int max_frames);
// Drops the frame references (GIL still held).
void release_awaiter_chain(AwaiterChain& chain);

}  // namespace connleak::shim
