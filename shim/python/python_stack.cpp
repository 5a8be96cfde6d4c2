#include "shim/python/python_stack.h"

#include <atomic>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/script_frames.h"
#include "collector/core/string_table.h"
#include "shim/python/python_async.h"
#include "shim/runtime/api_once.h"
#include "shim/runtime/guard.h"

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
  // Optional (3.11+): the frame's last instruction, so a cached line is
  // reused without PyFrame_GetLineNumber's walk of the line table.
  int (*frame_get_lasti)(void*);
  void* (*get_attr)(void*, void*);
  void* (*intern_from_string)(const char*);
  const char* (*unicode_as_utf8)(void*);
  long (*long_as_long)(void*);
  void (*dec_ref)(void*);
  void (*inc_ref)(void*);
  void (*err_fetch)(void**, void**, void**);
  void (*err_restore)(void*, void*, void*);
  // Optional (3.10+): the cyclic GC is off while we hold the GIL, so that the
  // objects the C API allocates for us (frame objects, attribute values)
  // cannot trigger a collection, and with it finalizers written in Python.
  int (*gc_disable)();
  int (*gc_enable)();
  // Optional: another thread's stack (a checkout's holder), from the worker thread.
  void* (*interpreter_thread_head)(void*);
  void* (*thread_state_next)(void*);
};

bool fill(PyApi& t) {
  bool ok = load_symbol(t.is_initialized, "Py_IsInitialized") &&
            (load_symbol(t.is_finalizing, "Py_IsFinalizing") ||
             load_symbol(t.is_finalizing, "_Py_IsFinalizing")) &&
            load_symbol(t.gil_this_thread_state, "PyGILState_GetThisThreadState") &&
            load_symbol(t.gil_ensure, "PyGILState_Ensure") &&
            load_symbol(t.gil_release, "PyGILState_Release") &&
            load_symbol(t.thread_state_get_frame, "PyThreadState_GetFrame") &&
            load_symbol(t.thread_state_get_interpreter, "PyThreadState_GetInterpreter") &&
            load_symbol(t.interpreter_main, "PyInterpreterState_Main") &&
            load_symbol(t.frame_get_back, "PyFrame_GetBack") &&
            load_symbol(t.frame_get_code, "PyFrame_GetCode") &&
            load_symbol(t.frame_get_line_number, "PyFrame_GetLineNumber") &&
            load_symbol(t.get_attr, "PyObject_GetAttr") &&
            load_symbol(t.intern_from_string, "PyUnicode_InternFromString") &&
            load_symbol(t.unicode_as_utf8, "PyUnicode_AsUTF8") &&
            load_symbol(t.long_as_long, "PyLong_AsLong") && load_symbol(t.dec_ref, "Py_DecRef") &&
            load_symbol(t.inc_ref, "Py_IncRef") && load_symbol(t.err_fetch, "PyErr_Fetch") &&
            load_symbol(t.err_restore, "PyErr_Restore");
  if (ok && !load_symbol(t.frame_get_lasti, "PyFrame_GetLasti")) t.frame_get_lasti = nullptr;
  if (ok && !(load_symbol(t.gc_disable, "PyGC_Disable") && load_symbol(t.gc_enable, "PyGC_Enable")))
    t.gc_disable = nullptr;
  if (ok && !(load_symbol(t.interpreter_thread_head, "PyInterpreterState_ThreadHead") &&
              load_symbol(t.thread_state_next, "PyThreadState_Next")))
    t.interpreter_thread_head = nullptr;
  return ok;
}

constinit ApiOnce<PyApi> g_api{fill};

// Looked up once, in the global scope: a python3 executable exports its C API.
const PyApi* api() {
  return g_api.get();
}

// obj.name, a new reference or null. Not PyObject_GetAttrString: CPython's
// type attribute cache keys on the name object's address and keeps a reference
// to it, so a fresh name string per lookup would fill the cache with copies
// (evicting the program's entries); the interned name is the same object.
void* get_attr(const PyApi& py, void* obj, const char* name) {
  void* key = py.intern_from_string(name);
  if (!key) return nullptr;
  void* value = py.get_attr(obj, key);
  py.dec_ref(key);
  return value;
}

// A code object's attribute as an interned-able string; "" when unavailable.
std::string_view code_string(const PyApi& py, void* code, const char* attr, void** holder) {
  *holder = get_attr(py, code, attr);
  if (!*holder) return {};
  const char* s = py.unicode_as_utf8(*holder);
  return s ? std::string_view(s) : std::string_view();
}

// Whether frames of `code` run a coroutine (CO_COROUTINE, or
// CO_ITERABLE_COROUTINE for @types.coroutine generators): an asyncio Task's
// own coroutine is one, so a stack without such a frame runs in no task and
// needs no look for awaiters (a lookup in sys.modules and the task's state,
// ~600 instructions a capture). Unknown flags count as a coroutine.
bool code_is_coroutine(const PyApi& py, void* code) {
  constexpr long kCoroutineFlags = 0x0080 | 0x0100;
  void* flags = get_attr(py, code, "co_flags");
  if (!flags) return true;
  const long value = py.long_as_long(flags);
  py.dec_ref(flags);
  return value == -1 || (value & kCoroutineFlags) != 0;
}

// Per code object: its interned file and function, and the frame of the line
// it was last seen at. A frame then costs one probe here instead of two
// attribute reads, two UTF-8 conversions and three interning lookups, which
// were most of a pool checkout's cost (BENCHMARKS.md). The cache holds a
// reference to each code object it keys: a freed code object's address could
// otherwise come back as another function's and get its name. Never evicted
// (dropping that reference could free the code object, and run weakref
// callbacks, inside our call); once 3/4 full, new code objects take the slow
// path. The lock: captures hold the GIL, but not every build has one.
// A few instructions per code object: a recursive function, or one called
// from two places in the same stack, is seen at two or three instructions in
// one capture; with one slot each capture recomputed the line twice
// (PyFrame_GetLineNumber walks the line table: ~900 instructions).
constexpr int kLastiSlots = 4;
struct CodeEntry {
  void* code = nullptr;
  const char* file = nullptr;
  const char* function = nullptr;
  // The instructions `info` was computed at (-2: none), side by side so that
  // a hit is one compare per slot.
  int lasti[kLastiSlots] = {-2, -2, -2, -2};
  const ScriptFrame* info[kLastiSlots] = {};
  unsigned next = 0;       // the slot replaced next (round robin)
  bool coroutine = false;  // code_is_coroutine
};
constexpr std::size_t kCodeSlots = 4096;  // a power of two
struct CodeCache {
  ForkMutex mutex;
  std::size_t used = 0;
  CodeEntry slots[kCodeSlots];
};
CodeCache& code_cache() {
  CodeCache& c =
      fork_safe_static([] { return new CodeCache; });  // never destroyed: captures run during exit
  return c;
}

// The entry of `code`, or the empty slot it would go to; null when full.
inline CodeEntry* code_slot(CodeCache& c, const void* code) {
  std::size_t i = (reinterpret_cast<std::uintptr_t>(code) >> 4) & (kCodeSlots - 1);
  for (std::size_t probes = 0; probes < kCodeSlots; ++probes, i = (i + 1) & (kCodeSlots - 1))
    if (c.slots[i].code == code || c.slots[i].code == nullptr) return &c.slots[i];
  return nullptr;
}

// A code object cached, its frame at an instruction not seen lately: the
// line from the line table. PyFrame_GetLineNumber reads the frame and the
// line table: plain C, no Python code runs under our lock.
[[gnu::noinline]] const ScriptFrame* reline(const PyApi& py, CodeEntry* e, void* frame, int lasti) {
  const int line = py.frame_get_line_number(frame);
  const ScriptFrame* info = intern_script_frame_interned(e->file, e->function, line);
  e->lasti[e->next] = lasti;
  e->info[e->next] = info;
  e->next = (e->next + 1) % kLastiSlots;
  return info;
}

// A hit in the cache (the caller holds its lock): the interned frame of
// `code` at `lasti`, or null when `code` is not cached.
inline const ScriptFrame* cached_frame_info(const PyApi& py, CodeCache& cache, void* frame,
                                            void* code, int lasti, bool& coroutine) {
  CodeEntry* e = code_slot(cache, code);
  if (!e || e->code != code) return nullptr;
  coroutine = coroutine || e->coroutine;
  if (lasti != -2)
    for (int k = 0; k < kLastiSlots; ++k)
      if (e->lasti[k] == lasti) return e->info[k];
  return reline(py, e, frame, lasti);
}

// A code object seen for the first time: its names read through the C API,
// outside the cache's lock. Takes over the reference to `code`.
const ScriptFrame* uncached_frame_info(const PyApi& py, CodeCache& cache, void* frame, void* code,
                                       int lasti, bool& coroutine) {
  const int line = py.frame_get_line_number(frame);
  const bool is_coroutine = code_is_coroutine(py, code);
  coroutine = coroutine || is_coroutine;
  void *file_obj = nullptr, *name_obj = nullptr;
  const char* file = intern_string(code_string(py, code, "co_filename", &file_obj));
  const char* name = intern_string(code_string(py, code, "co_name", &name_obj));
  const ScriptFrame* info = intern_script_frame_interned(file, name, line);
  if (file_obj) py.dec_ref(file_obj);
  if (name_obj) py.dec_ref(name_obj);
  {
    std::lock_guard<ForkMutex> lock(cache.mutex);
    CodeEntry* e = code_slot(cache, code);
    if (e && e->code == nullptr && cache.used < kCodeSlots / 4 * 3) {
      *e = CodeEntry{};
      e->code = code;
      e->file = file;
      e->function = name;
      e->coroutine = is_coroutine;
      e->lasti[0] = lasti;
      e->info[0] = info;
      e->next = 1;
      ++cache.used;
      return info;  // the cache keeps our reference to `code`
    }
  }
  py.dec_ref(code);
  return info;
}

// A frame object (borrowed) as an interned frame; null when it has no code.
// `coroutine` set when it runs a coroutine. Captures of the running stack
// name their frames in capture_python_stack's own loop and come here for a
// code object not cached yet.
const ScriptFrame* frame_info(const PyApi& py, void* frame, bool& coroutine) {
  void* code = py.frame_get_code(frame);  // new reference (or null)
  if (!code) return nullptr;
  const int lasti = py.frame_get_lasti ? py.frame_get_lasti(frame) : -2;
  CodeCache& cache = code_cache();
  const ScriptFrame* info;
  {
    std::lock_guard<ForkMutex> lock(cache.mutex);
    info = cached_frame_info(py, cache, frame, code, lasti, coroutine);
  }
  if (info) {
    py.dec_ref(code);
    return info;
  }
  return uncached_frame_info(py, cache, frame, code, lasti, coroutine);
}

const ScriptFrame* frame_info(const PyApi& py, void* frame) {
  bool coroutine = false;
  return frame_info(py, frame, coroutine);
}

bool is_event_loop_run(const ScriptFrame* f) {
  std::string_view file(f->file), function(f->function);
  return function == "_run" && file.ends_with("asyncio/events.py");
}

// In a thread running an asyncio Task, the walk stops at the task's coroutine
// and continues into the event loop (Handle._run, _run_once, run_forever ...):
// whoever awaits the task is suspended elsewhere, in another task, and for
// asyncio.wait_for on Python <= 3.11 that is the program's own code (asyncpg
// and aiomysql connect through wait_for). Splices those awaiter frames in
// right under the task's coroutine frame (else above the loop's Handle._run,
// else at the end), keeping at most `depth` frames, innermost first.
int splice_awaiters(const PyApi& py, std::uintptr_t* frames, const void* const* objects, int n,
                    int depth) {
  AwaiterChain chain;
  if (!collect_awaiter_chain(chain, depth)) return n;
  int at = -1;
  for (int i = 0; i < n && at < 0; ++i)
    if (chain.anchor && objects[i] == chain.anchor) at = i + 1;
  for (int i = 0; i < n && at < 0; ++i)
    if (is_event_loop_run(reinterpret_cast<const ScriptFrame*>(frames[i]))) at = i;
  if (at < 0) at = n;
  std::uintptr_t merged[kMaxFrames];
  int m = 0;
  for (int i = 0; i < at && m < depth; ++i) merged[m++] = frames[i];
  for (int i = 0; i < chain.count && m < depth; ++i)
    if (const ScriptFrame* info = frame_info(py, chain.frames[i]))
      merged[m++] = reinterpret_cast<std::uintptr_t>(info);
  for (int i = at; i < n && m < depth; ++i) merged[m++] = frames[i];
  release_awaiter_chain(chain);
  for (int i = 0; i < m; ++i) frames[i] = merged[i];
  return m;
}

}  // namespace

bool python_present() {
  return api() != nullptr;
}

bool python_finalizing() {
  // Not Py_IsInitialized(): CPython clears it as soon as finalization starts.
  const PyApi* py = api();
  return py && py->is_finalizing();
}

StackId capture_python_stack(int depth) {
  const PyApi* py = api();
  if (!py || depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
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
  bool gc_was_enabled = py->gc_disable && py->gc_disable();
  std::uintptr_t frames[kMaxFrames];
  // The frame objects, for identity only: each stays alive while its frame
  // runs (the interpreter frame owns it); our references are dropped once
  // the stack is named.
  const void* objects[kMaxFrames];
  void* walked[kMaxFrames];
  const ScriptFrame* infos[kMaxFrames];
  int m = 0;
  bool coroutine = false, missed = false;
  void* frame = py->thread_state_get_frame(tstate);  // new reference (or null)
  {
    // One pass, under one lock of the code cache: frame, code, instruction,
    // probe. Walking first and naming after cost three more loops over the
    // frames (~30 instructions a frame). Nothing here runs Python code: the
    // frame objects PyFrame_GetBack may create are plain allocations (the GC
    // is off), and a code's reference is never its last (its frame holds it).
    CodeCache& cache = code_cache();
    std::lock_guard<ForkMutex> lock(cache.mutex);
    const bool have_lasti = py->frame_get_lasti != nullptr;
    // A recursive function's frames repeat the same (code, instruction): the
    // frame under it is the same interned frame, without a probe.
    const void* prev_code = nullptr;
    int prev_lasti = -2;
    const ScriptFrame* prev = nullptr;
    while (frame && m < depth) {
      walked[m] = frame;
      const ScriptFrame* info = nullptr;
      if (void* code = py->frame_get_code(frame)) {  // new reference
        const int lasti = have_lasti ? py->frame_get_lasti(frame) : -2;
        if (code == prev_code && lasti == prev_lasti && lasti != -2) {
          info = prev;
        } else if ((info = cached_frame_info(*py, cache, frame, code, lasti, coroutine))) {
          prev_code = code;
          prev_lasti = lasti;
          prev = info;
        } else {
          missed = true;  // named below, outside the lock
        }
        py->dec_ref(code);
      }
      infos[m++] = info;
      frame = py->frame_get_back(frame);
    }
  }
  // A walk cut at `depth` may have missed the task's coroutine: look anyway.
  bool maybe_in_task = coroutine || frame != nullptr;
  if (frame) py->dec_ref(frame);
  // A code object not cached yet (or a frame without code): the slow path.
  if (missed)
    for (int i = 0; i < m; ++i)
      if (!infos[i]) infos[i] = frame_info(*py, walked[i], maybe_in_task);
  int n = 0;
  for (int i = 0; i < m; ++i) {
    if (infos[i]) {
      objects[n] = walked[i];
      frames[n++] = reinterpret_cast<std::uintptr_t>(infos[i]);
    }
    py->dec_ref(walked[i]);
  }
  if (maybe_in_task) n = splice_awaiters(*py, frames, objects, n, depth);
  if (gc_was_enabled) py->gc_enable();
  py->err_restore(type, value, trace);
  py->gil_release(gil);
  return script_depot().intern(frames, static_cast<std::size_t>(n));
}

const ScriptFrame* python_frame_info(void* frame) {
  const PyApi* py = api();
  return py ? frame_info(*py, frame) : nullptr;
}

const void* current_python_thread() {
  const PyApi* py = api();
  if (!py || !py->is_initialized() || py->is_finalizing()) return nullptr;
  return py->gil_this_thread_state();
}

StackId capture_thread_python_stack(const void* holder, int depth) {
  const PyApi* py = api();
  if (!py || !holder || depth <= 0 || !py->interpreter_thread_head) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
  // See capture_python_stack: never PyGILState_Ensure while finalizing.
  if (!py->is_initialized() || py->is_finalizing()) return 0;
  Reentry guard;
  int gil = py->gil_ensure();
  void *type = nullptr, *value = nullptr, *trace = nullptr;
  py->err_fetch(&type, &value, &trace);
  bool gc_was_enabled = py->gc_disable && py->gc_disable();
  // The holder may have exited since its checkout: only a thread state still
  // in the interpreter's list is read (by identity; nothing is dereferenced
  // before it is found there).
  void* target = nullptr;
  for (void* ts = py->interpreter_thread_head(py->interpreter_main()); ts;
       ts = py->thread_state_next(ts))
    if (ts == holder) target = ts;
  std::uintptr_t frames[kMaxFrames];
  int n = 0;
  if (target) {
    // With the GIL held here the holder is not running Python: its frame
    // chain is stable while we read it.
    void* frame = py->thread_state_get_frame(target);
    while (frame && n < depth) {
      if (const ScriptFrame* info = frame_info(*py, frame))
        frames[n++] = reinterpret_cast<std::uintptr_t>(info);
      void* back = py->frame_get_back(frame);
      py->dec_ref(frame);
      frame = back;
    }
    if (frame) py->dec_ref(frame);
  }
  if (gc_was_enabled) py->gc_enable();
  py->err_restore(type, value, trace);
  py->gil_release(gil);
  return n ? script_depot().intern(frames, static_cast<std::size_t>(n)) : 0;
}

}  // namespace connleak::shim
