#include "shim/python/python_task.h"

#include <atomic>
#include <mutex>

#include "collector/core/checkouts.h"
#include "collector/core/fork_mutex.h"
#include "collector/core/script_frames.h"
#include "shim/python/python_async.h"
#include "shim/python/python_stack.h"
#include "shim/runtime/api_once.h"
#include "shim/runtime/guard.h"

// Why a weak reference and a table look-up under the GIL: a strong reference
// would keep a finished task (and everything its frames hold, the connection
// included) alive, changing when the program's objects are freed. The weak
// reference is dropped by connleak_checkin with the GIL held; a reader takes
// the GIL first, then finds the checkout still open in the table and takes
// its own reference to the weakref there, so the two can never cross.

namespace connleak::shim {

namespace {

struct TaskApi {
  int (*is_initialized)();
  int (*is_finalizing)();
  int (*gil_check)();
  int (*gil_ensure)();
  void (*gil_release)(int);
  void* (*weakref_new)(void*, void*);
  void* (*weakref_get_object)(void*);  // borrowed; Py_None once the referent is gone
  void (*inc_ref)(void*);
  void (*dec_ref)(void*);
  void (*err_clear)();
  void (*err_fetch)(void**, void**, void**);
  void (*err_restore)(void*, void*, void*);
  void* none;
  int (*gc_disable)();  // optional (3.10+): no collection, no finalizer, while we read
  int (*gc_enable)();
};

bool fill(TaskApi& t) {
  bool ok = load_symbol(t.is_initialized, "Py_IsInitialized") &&
            (load_symbol(t.is_finalizing, "Py_IsFinalizing") ||
             load_symbol(t.is_finalizing, "_Py_IsFinalizing")) &&
            load_symbol(t.gil_check, "PyGILState_Check") &&
            load_symbol(t.gil_ensure, "PyGILState_Ensure") &&
            load_symbol(t.gil_release, "PyGILState_Release") &&
            load_symbol(t.weakref_new, "PyWeakref_NewRef") &&
            load_symbol(t.weakref_get_object, "PyWeakref_GetObject") &&
            load_symbol(t.inc_ref, "Py_IncRef") && load_symbol(t.dec_ref, "Py_DecRef") &&
            load_symbol(t.err_clear, "PyErr_Clear") && load_symbol(t.err_fetch, "PyErr_Fetch") &&
            load_symbol(t.err_restore, "PyErr_Restore") && load_symbol(t.none, "_Py_NoneStruct");
  if (ok && !(load_symbol(t.gc_disable, "PyGC_Disable") && load_symbol(t.gc_enable, "PyGC_Enable")))
    t.gc_disable = nullptr;
  return ok;
}

constinit ApiOnce<TaskApi> g_api{fill};

const TaskApi* api() {
  return g_api.get();
}

bool interpreter_up(const TaskApi& py) {
  // Order matters: PyGILState_Ensure during finalization kills (<= 3.13) or
  // hangs (3.14) a thread other than the main one.
  return py.is_initialized() && !py.is_finalizing();
}

}  // namespace

void* task_weakref(void* task) {
  const TaskApi* py = api();
  if (!py || !task || !py->gil_check()) return nullptr;
  void* ref = py->weakref_new(task, nullptr);
  if (!ref) py->err_clear();  // a type without weak references: no suspended stack
  return ref;
}

void drop_task_weakref(void* ref) {
  const TaskApi* py = api();
  if (!py || !ref) return;
  if (py->gil_check()) {
    py->dec_ref(ref);
    return;
  }
  if (!interpreter_up(*py)) return;
  Reentry guard;
  int gil = py->gil_ensure();
  py->dec_ref(ref);
  py->gil_release(gil);
}

StackId capture_holder_task_stack(std::uint64_t checkout_id, int depth, bool* running) {
  *running = false;
  const TaskApi* py = api();
  if (!py || depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
  if (!interpreter_up(*py)) return 0;
  Reentry guard;
  int gil = py->gil_ensure();
  void *type = nullptr, *value = nullptr, *trace = nullptr;
  py->err_fetch(&type, &value, &trace);
  bool gc_was_enabled = py->gc_disable && py->gc_disable();
  void* ref = nullptr;
  CheckoutTable::instance().update_open(checkout_id, [&](CheckoutRecord& r) {
    ref = r.task_ref;
    if (ref) py->inc_ref(ref);
  });
  std::uintptr_t frames[kMaxFrames];
  int n = 0;
  if (ref) {
    void* task = py->weakref_get_object(ref);
    if (task && task != py->none) {
      py->inc_ref(task);
      void* objects[kMaxFrames];
      int got = collect_task_frames(task, objects, depth);
      *running = got < 0;
      for (int i = 0; i < got; ++i) {
        if (const ScriptFrame* info = python_frame_info(objects[i]))
          frames[n++] = reinterpret_cast<std::uintptr_t>(info);
        py->dec_ref(objects[i]);
      }
      py->dec_ref(task);
    }
    py->err_clear();
    py->dec_ref(ref);
  }
  if (gc_was_enabled) py->gc_enable();
  py->err_restore(type, value, trace);
  py->gil_release(gil);
  return n ? script_depot().intern(frames, static_cast<std::size_t>(n)) : 0;
}

}  // namespace connleak::shim
