#include "shim/python_stack.h"

#include <dlfcn.h>

#include <atomic>
#include <mutex>

#include "collector/python_frames.h"
#include "shim/guard.h"

namespace connleak::shim {

namespace {

// The slice of the CPython C API we use, all stable ABI since 3.9.
struct PyApi {
  int (*is_initialized)();
  int (*is_finalizing)();
  void* (*gil_this_thread_state)();
  int (*gil_ensure)();
  void (*gil_release)(int);
  void* (*thread_state_get_frame)(void*);
  void* (*thread_state_get_interpreter)(void*);
  void* (*interpreter_main)();
  void* (*frame_get_back)(void*);
  void* (*frame_get_code)(void*);
  int (*frame_get_line_number)(void*);
  void* (*get_attr_string)(void*, const char*);
  const char* (*unicode_as_utf8)(void*);
  void (*dec_ref)(void*);
  void (*err_fetch)(void**, void**, void**);
  void (*err_restore)(void*, void*, void*);
};

template <typename T>
bool load(T& slot, const char* name) {
  slot = reinterpret_cast<T>(dlsym(RTLD_DEFAULT, name));
  return slot != nullptr;
}

// Looked up once, in the global scope: a python3 executable exports its C API.
// (An interpreter embedded through a dlopen(RTLD_LOCAL)ed libpython is not
// found, and the report then has no Python stacks.)
const PyApi* api() {
  static std::atomic<int> state{0};  // 0 unknown, 1 absent, 2 present
  static PyApi table;
  int s = state.load(std::memory_order_acquire);
  if (s != 0) return s == 2 ? &table : nullptr;
  static std::mutex mutex;
  std::lock_guard<std::mutex> lock(mutex);
  if ((s = state.load(std::memory_order_relaxed)) != 0) return s == 2 ? &table : nullptr;
  Reentry guard;
  PyApi t{};
  bool ok = load(t.is_initialized, "Py_IsInitialized") &&
            (load(t.is_finalizing, "Py_IsFinalizing") || load(t.is_finalizing, "_Py_IsFinalizing")) &&
            load(t.gil_this_thread_state, "PyGILState_GetThisThreadState") &&
            load(t.gil_ensure, "PyGILState_Ensure") && load(t.gil_release, "PyGILState_Release") &&
            load(t.thread_state_get_frame, "PyThreadState_GetFrame") &&
            load(t.thread_state_get_interpreter, "PyThreadState_GetInterpreter") &&
            load(t.interpreter_main, "PyInterpreterState_Main") &&
            load(t.frame_get_back, "PyFrame_GetBack") && load(t.frame_get_code, "PyFrame_GetCode") &&
            load(t.frame_get_line_number, "PyFrame_GetLineNumber") &&
            load(t.get_attr_string, "PyObject_GetAttrString") &&
            load(t.unicode_as_utf8, "PyUnicode_AsUTF8") && load(t.dec_ref, "Py_DecRef") &&
            load(t.err_fetch, "PyErr_Fetch") && load(t.err_restore, "PyErr_Restore");
  if (ok) table = t;
  set_python_host(ok);
  state.store(ok ? 2 : 1, std::memory_order_release);
  return ok ? &table : nullptr;
}

// A code object's attribute as an interned-able string; "" when unavailable.
std::string_view code_string(const PyApi& py, void* code, const char* attr, void** holder) {
  *holder = py.get_attr_string(code, attr);
  if (!*holder) return {};
  const char* s = py.unicode_as_utf8(*holder);
  return s ? std::string_view(s) : std::string_view();
}

}  // namespace

bool python_finalizing() {
  // Not Py_IsInitialized(): CPython clears it as soon as finalization starts.
  const PyApi* py = api();
  return py && py->is_finalizing();
}

StackId capture_python_stack(int depth) {
  const PyApi* py = api();
  if (!py || depth <= 0) return 0;
  // Order matters: during finalization PyGILState_Ensure from a non-main
  // thread kills (<= 3.13) or hangs (3.14) that thread.
  if (!py->is_initialized() || py->is_finalizing()) return 0;
  void* tstate = py->gil_this_thread_state();
  if (!tstate) return 0;  // a thread created from C that never ran Python
  Reentry guard;
  int gil = py->gil_ensure();
  // PyGILState_* only knows the main interpreter: skip sub-interpreters.
  if (py->thread_state_get_interpreter(tstate) != py->interpreter_main()) {
    py->gil_release(gil);
    return 0;
  }
  // Our attribute lookups must neither clobber nor leave an exception.
  void *type = nullptr, *value = nullptr, *trace = nullptr;
  py->err_fetch(&type, &value, &trace);
  std::uintptr_t frames[kMaxFrames];
  int n = 0;
  void* frame = py->thread_state_get_frame(tstate);  // new reference (or null)
  while (frame && n < depth && n < static_cast<int>(kMaxFrames)) {
    void* code = py->frame_get_code(frame);
    if (code) {
      void *file_obj = nullptr, *name_obj = nullptr;
      std::string_view file = code_string(*py, code, "co_filename", &file_obj);
      std::string_view name = code_string(*py, code, "co_name", &name_obj);
      frames[n++] = reinterpret_cast<std::uintptr_t>(
          intern_py_frame(file, name, py->frame_get_line_number(frame)));
      if (file_obj) py->dec_ref(file_obj);
      if (name_obj) py->dec_ref(name_obj);
      py->dec_ref(code);
    }
    void* back = py->frame_get_back(frame);
    py->dec_ref(frame);
    frame = back;
  }
  if (frame) py->dec_ref(frame);
  py->err_restore(type, value, trace);
  py->gil_release(gil);
  return python_depot().intern(frames, static_cast<std::size_t>(n));
}

}  // namespace connleak::shim
