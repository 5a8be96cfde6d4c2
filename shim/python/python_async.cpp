#include "shim/python/python_async.h"

#include <atomic>
#include <cstdint>
#include <mutex>
#include <utility>

#include "collector/core/fork_mutex.h"
#include "shim/runtime/api_once.h"
#include "shim/runtime/guard.h"

// How "who waits for task T" is found, with attribute reads only (checked on
// CPython 3.11; the attributes are all C getters of _asyncio's C classes):
//  - T._callbacks is None or a list of (callback, context) tuples;
//  - `await T` in task W registered W's wakeup: a builtin method named
//    task_wakeup whose __self__ is W;
//  - asyncio.wait_for (<= 3.11) registered functools.partial(_release_waiter,
//    waiter) on T, and its own task W awaits `waiter`, a Future whose
//    _callbacks hold W's task_wakeup.
// W's suspended frames: coro = W.get_coro(), then coro.cr_frame and
// coro = coro.cr_await down to the innermost suspended coroutine.
//
// Nothing here may run Python code (a __getattr__, a property, a __hash__): an
// attribute is only read from an object whose exact type is one of CPython's
// or _asyncio's C types, whose getters are C. Everything else ends the chain.
// The caller (capture_python_stack) holds the GIL, has saved the error
// indicator and disabled the cyclic GC (no finalizer can run on allocation).

namespace connleak::shim {

namespace {

using PySsize = std::intptr_t;  // Py_ssize_t

constexpr int kMaxAwaiterLevels = 8;      // awaiter of the awaiter of ...
constexpr PySsize kMaxCallbacks = 64;     // callbacks examined per future
constexpr PySsize kMaxRunningLoops = 64;  // _current_tasks entries examined

struct AsyncApi {
  void* (*import_get_module_dict)();                  // borrowed
  void* (*dict_get_item_string)(void*, const char*);  // borrowed, never sets an error
  void* (*dict_get_item)(void*, void*);               // borrowed, never sets an error
  void* (*unicode_from_string)(const char*);
  int (*at_exit)(void (*)());                         // optional: without it, no key is kept
  int (*dict_next)(void*, PySsize*, void**, void**);  // borrowed
  void* (*get_attr)(void*, void*);
  void* (*intern_from_string)(const char*);
  void* (*call_no_args)(void*);
  void* (*call_function_obj_args)(void*, ...);
  void* (*object_type)(void*);
  PySsize (*list_size)(void*);
  void* (*list_get_item)(void*, PySsize);  // borrowed
  PySsize (*tuple_size)(void*);
  void* (*tuple_get_item)(void*, PySsize);  // borrowed
  int (*unicode_compare_ascii)(void*, const char*);
  void (*err_clear)();
  void (*inc_ref)(void*);
  void (*dec_ref)(void*);
  void* (*type_get_slot)(void*, int);
  // Type objects (data symbols), for exact type checks.
  void* type_type;
  void* module_type;
  void* dict_type;
  void* list_type;
  void* tuple_type;
  void* cfunction_type;
  void* cmethod_type;  // optional (3.9+): builtin methods of METH_METHOD functions
  void* method_descr_type;
  void* coro_type;
  void* gen_type;
  void* async_gen_type;
  void* frame_type;
  void* true_object;  // Py_True
  // Optional, private but exported (3.11, 3.12): the objects an `await` goes
  // through when it does not await a coroutine directly.
  void* coro_wrapper_type;  // coro.__await__(): a class's __await__ delegating to a coroutine
  void*
      async_gen_asend_type;  // agen.__anext__(): `async with` an @asynccontextmanager, `async for`
};

// Any symbol missing (an old or unusual interpreter): the feature is off,
// the plain stack is still taken.
bool fill(AsyncApi& t) {
  bool ok =
      load_symbol(t.import_get_module_dict, "PyImport_GetModuleDict") &&
      load_symbol(t.dict_get_item_string, "PyDict_GetItemString") &&
      load_symbol(t.dict_get_item, "PyDict_GetItem") &&
      load_symbol(t.unicode_from_string, "PyUnicode_FromString") &&
      load_symbol(t.dict_next, "PyDict_Next") && load_symbol(t.get_attr, "PyObject_GetAttr") &&
      load_symbol(t.intern_from_string, "PyUnicode_InternFromString") &&
      load_symbol(t.call_no_args, "PyObject_CallNoArgs") &&
      load_symbol(t.call_function_obj_args, "PyObject_CallFunctionObjArgs") &&
      load_symbol(t.object_type, "PyObject_Type") && load_symbol(t.list_size, "PyList_Size") &&
      load_symbol(t.list_get_item, "PyList_GetItem") && load_symbol(t.tuple_size, "PyTuple_Size") &&
      load_symbol(t.tuple_get_item, "PyTuple_GetItem") &&
      load_symbol(t.unicode_compare_ascii, "PyUnicode_CompareWithASCIIString") &&
      load_symbol(t.err_clear, "PyErr_Clear") && load_symbol(t.inc_ref, "Py_IncRef") &&
      load_symbol(t.dec_ref, "Py_DecRef") && load_symbol(t.type_type, "PyType_Type") &&
      load_symbol(t.module_type, "PyModule_Type") && load_symbol(t.dict_type, "PyDict_Type") &&
      load_symbol(t.list_type, "PyList_Type") && load_symbol(t.tuple_type, "PyTuple_Type") &&
      load_symbol(t.cfunction_type, "PyCFunction_Type") &&
      load_symbol(t.method_descr_type, "PyMethodDescr_Type") &&
      load_symbol(t.coro_type, "PyCoro_Type") && load_symbol(t.gen_type, "PyGen_Type") &&
      load_symbol(t.async_gen_type, "PyAsyncGen_Type") &&
      load_symbol(t.frame_type, "PyFrame_Type") && load_symbol(t.true_object, "_Py_TrueStruct");
  if (ok) {
    load_symbol(t.cmethod_type, "PyCMethod_Type");
    if (!load_symbol(t.at_exit, "Py_AtExit")) t.at_exit = nullptr;
    if (load_symbol(t.type_get_slot, "PyType_GetSlot")) {
      load_symbol(t.coro_wrapper_type, "_PyCoroWrapper_Type");
      load_symbol(t.async_gen_asend_type, "_PyAsyncGenASend_Type");
    }
  }
  return ok;
}

constinit ApiOnce<AsyncApi> g_api{fill};
// Valid once loaded() returned true.
constinit const AsyncApi& g = g_api.table();

bool loaded() {
  return g_api.get() != nullptr;
}

// An owned (new) reference.
class Ref {
 public:
  Ref() = default;
  explicit Ref(void* p) : p_(p) {}
  Ref(Ref&& o) noexcept : p_(std::exchange(o.p_, nullptr)) {}
  Ref& operator=(Ref&& o) noexcept {
    Ref old(std::exchange(p_, std::exchange(o.p_, nullptr)));
    return *this;
  }
  ~Ref() {
    if (p_) g.dec_ref(p_);
  }
  Ref(const Ref&) = delete;
  Ref& operator=(const Ref&) = delete;
  void* get() const { return p_; }
  void* release() { return std::exchange(p_, nullptr); }
  explicit operator bool() const { return p_ != nullptr; }

 private:
  void* p_ = nullptr;
};

Ref borrowed(void* p) {
  if (p) g.inc_ref(p);
  return Ref(p);
}

// A failed lookup or call leaves an exception: cleared at once, so the next
// C API call starts clean.
Ref checked(void* result) {
  if (!result) g.err_clear();
  return Ref(result);
}

// obj.name. The name is interned (as the program's own attribute names are):
// CPython's type attribute cache keys on the name object's address and keeps
// a reference to it, so a fresh string per lookup (PyObject_GetAttrString)
// would fill the cache with copies, evicting the program's entries.
Ref attr(void* obj, const char* name) {
  Ref key = checked(g.intern_from_string(name));
  return key ? checked(g.get_attr(obj, key.get())) : Ref();
}

// The exact type (no reference kept: the object keeps its type alive).
void* type_of(void* obj) {
  if (!obj) return nullptr;
  void* type = g.object_type(obj);
  if (type) g.dec_ref(type);
  return type;
}

bool is_builtin_method(void* obj) {
  void* t = type_of(obj);
  return t && (t == g.cfunction_type || (g.cmethod_type && t == g.cmethod_type));
}

// _asyncio's and _functools' C classes, looked up per capture (no Python
// object is kept between captures).
struct Known {
  void* task_type = nullptr;     // _asyncio.Task
  void* future_type = nullptr;   // _asyncio.Future
  void* partial_type = nullptr;  // _functools.partial; null: wait_for not followed
  Ref task_get_coro;             // _asyncio.Task.get_coro, the method descriptor
  Ref holders[3];

  bool is_task(void* obj) const { return obj && type_of(obj) == task_type; }
  bool is_future(void* obj) const {
    void* t = type_of(obj);
    return t && (t == task_type || t == future_type);
  }
};

// A module from sys.modules (never imported here), borrowed.
void* imported_module(const char* name) {
  void* modules = g.import_get_module_dict();
  if (!modules || type_of(modules) != g.dict_type) return nullptr;
  void* module = g.dict_get_item_string(modules, name);
  return module && type_of(module) == g.module_type ? module : nullptr;
}

// A class of a C module, checked to be a plain class object (its attribute
// lookup is type's own, in C).
void* module_class(void* module, const char* name, Ref& holder) {
  holder = attr(module, name);
  return holder && type_of(holder.get()) == g.type_type ? holder.get() : nullptr;
}

// "_asyncio" as a str we own, for sys.modules lookups: PyDict_GetItemString
// makes (and hashes) a new str per call, ~260 instructions, and every capture
// whose walk was cut at its depth (the close's 8 frames) asks for _asyncio.
// Never released, so its address cannot come back as another object; dropped
// (leaked) by a Py_AtExit callback, so that an interpreter initialized again
// in the same process gets a key of its own. Captures hold the GIL; the
// atomic is for builds without one.
constinit std::atomic<void*> g_asyncio_key{nullptr};
constinit std::atomic<bool> g_at_exit_registered{false};

// Py_FinalizeEx runs its callbacks once and forgets them: registered again
// with the next key.
void forget_asyncio_key() {
  g_asyncio_key.store(nullptr, std::memory_order_release);
  g_at_exit_registered.store(false);
}

void* asyncio_key() {
  void* key = g_asyncio_key.load(std::memory_order_acquire);
  if (key || !g.at_exit) return key;
  if (!g_at_exit_registered.exchange(true) && g.at_exit(forget_asyncio_key) != 0) {
    g_at_exit_registered.store(false);  // no room for one more callback: no key kept
    return nullptr;
  }
  void* fresh = g.unicode_from_string("_asyncio");
  if (!fresh) {
    g.err_clear();
    return nullptr;
  }
  if (g_asyncio_key.compare_exchange_strong(key, fresh)) return fresh;
  g.dec_ref(fresh);  // another thread's key won (a str: freeing it runs no Python code)
  return key;
}

// sys.modules["_asyncio"] (borrowed), through the kept key when there is one.
void* imported_asyncio() {
  void* key = asyncio_key();
  if (!key) return imported_module("_asyncio");
  void* modules = g.import_get_module_dict();
  if (!modules || type_of(modules) != g.dict_type) return nullptr;
  // A str key: its hash and comparison are C, no Python code runs.
  void* module = g.dict_get_item(modules, key);
  return module && type_of(module) == g.module_type ? module : nullptr;
}

bool load_known(void* asyncio_module, Known& k) {
  k.task_type = module_class(asyncio_module, "Task", k.holders[0]);
  k.future_type = module_class(asyncio_module, "Future", k.holders[1]);
  if (!k.task_type || !k.future_type) return false;
  // Called unbound (get_coro(task)) rather than task.get_coro(): an instance
  // attribute cannot shadow the C method.
  k.task_get_coro = attr(k.task_type, "get_coro");
  if (!k.task_get_coro || type_of(k.task_get_coro.get()) != g.method_descr_type) return false;
  if (void* functools = imported_module("_functools"))
    k.partial_type = module_class(functools, "partial", k.holders[2]);
  return true;
}

// The task this thread's running event loop is stepping, or null: _asyncio
// not imported, no running loop (a plain thread, an executor thread), or a
// loop callback outside any task.
Ref running_task(void* asyncio_module) {
  Ref get_loop = attr(asyncio_module, "_get_running_loop");
  if (!get_loop || !is_builtin_method(get_loop.get())) return {};
  Ref loop = checked(g.call_no_args(get_loop.get()));  // C: reads the thread state
  if (!loop) return {};
  Ref tasks = attr(asyncio_module, "_current_tasks");  // {loop: task}
  if (!tasks || type_of(tasks.get()) != g.dict_type) return {};
  // Matched by identity rather than PyDict_GetItem: hashing the loop could
  // call a __hash__ written in Python.
  PySsize pos = 0;
  void *key = nullptr, *value = nullptr;
  for (PySsize seen = 0; seen < kMaxRunningLoops && g.dict_next(tasks.get(), &pos, &key, &value);
       ++seen)
    if (key == loop.get()) return borrowed(value);
  return {};
}

Ref task_coro(const Known& k, void* task) {
  return checked(g.call_function_obj_args(k.task_get_coro.get(), task, nullptr));
}

// The frame and the awaited object of a coroutine, generator-based coroutine
// or async generator; false for anything else (a Future, Cython's coroutines).
bool coroutine_attrs(void* coro, const char** frame_attr, const char** await_attr) {
  void* t = type_of(coro);
  if (t && t == g.coro_type) {
    *frame_attr = "cr_frame";
    *await_attr = "cr_await";
    return true;
  }
  if (t && t == g.gen_type) {
    *frame_attr = "gi_frame";
    *await_attr = "gi_yieldfrom";
    return true;
  }
  if (t && t == g.async_gen_type) {
    *frame_attr = "ag_frame";
    *await_attr = "ag_await";
    return true;
  }
  return false;
}

Ref coroutine_frame(void* coro) {
  const char *frame_attr, *await_attr;
  if (!coroutine_attrs(coro, &frame_attr, &await_attr)) return {};
  Ref frame = attr(coro, frame_attr);  // None once the coroutine finished
  return frame && type_of(frame.get()) == g.frame_type ? std::move(frame) : Ref();
}

struct Referents {
  void* objects[4];
  int count = 0;
};

int collect_referent(void* object, void* arg) {
  auto* r = static_cast<Referents*>(arg);
  if (object) r->objects[r->count++] = object;
  return r->count == 4 ? 1 : 0;  // non-zero stops the traversal
}

// What an awaited object that is not itself a coroutine stands for: the
// coroutine inside a coroutine_wrapper, the async generator inside an
// async_generator_asend. Neither exposes it as an attribute: read through the
// type's tp_traverse (what gc.get_referents does), in C. Null otherwise.
Ref unwrap_awaitable(void* awaited) {
  void* t = type_of(awaited);
  void* want = nullptr;
  if (t && g.coro_wrapper_type && t == g.coro_wrapper_type)
    want = g.coro_type;
  else if (t && g.async_gen_asend_type && t == g.async_gen_asend_type)
    want = g.async_gen_type;
  else
    return {};
  constexpr int kPyTpTraverse = 71;  // typeslots.h, stable ABI
  using Traverse = int (*)(void*, int (*)(void*, void*), void*);
  auto traverse = reinterpret_cast<Traverse>(g.type_get_slot(t, kPyTpTraverse));
  if (!traverse) {
    g.err_clear();
    return {};
  }
  Referents r;
  traverse(awaited, collect_referent, &r);
  for (int i = 0; i < r.count; ++i)
    if (type_of(r.objects[i]) == want) return borrowed(r.objects[i]);
  return {};
}

// The task waiting for `future` (a Task or Future): the first task_wakeup
// among its callbacks, or, one level down, the one of a future passed to a
// functools.partial callback (asyncio.wait_for's _release_waiter).
Ref waiting_task(const Known& k, void* future, bool through_partial) {
  if (!k.is_future(future)) return {};
  Ref callbacks = attr(future, "_callbacks");  // a fresh list or the future's own
  if (!callbacks || type_of(callbacks.get()) != g.list_type) return {};  // None: no callbacks
  PySsize n = g.list_size(callbacks.get());
  if (n > kMaxCallbacks) n = kMaxCallbacks;
  for (PySsize i = 0; i < n; ++i) {
    void* entry = g.list_get_item(callbacks.get(), i);  // (callback, context)
    if (!entry || type_of(entry) != g.tuple_type || g.tuple_size(entry) < 1) continue;
    void* callback = g.tuple_get_item(entry, 0);
    if (!callback) continue;
    if (is_builtin_method(callback)) {
      Ref name = attr(callback, "__name__");
      if (!name || g.unicode_compare_ascii(name.get(), "task_wakeup") != 0) continue;
      Ref self = attr(callback, "__self__");
      if (self && k.is_task(self.get())) return self;
    } else if (through_partial && k.partial_type && type_of(callback) == k.partial_type) {
      Ref args = attr(callback, "args");
      if (!args || type_of(args.get()) != g.tuple_type) continue;
      PySsize m = g.tuple_size(args.get());
      for (PySsize j = 0; j < m && j < 4; ++j) {
        void* arg = g.tuple_get_item(args.get(), j);
        if (arg == future) continue;
        if (Ref w = waiting_task(k, arg, false)) return w;
      }
    }
  }
  return {};
}

// Appends `task`'s suspended coroutine frames, innermost first.
void append_suspended_frames(const Known& k, void* task, AwaiterChain& out, int max_frames) {
  void* chain[kMaxFrames];  // new references, outermost first
  int depth = 0;
  Ref coro = task_coro(k, task);
  while (coro && depth < static_cast<int>(kMaxFrames)) {
    const char *frame_attr, *await_attr;
    if (!coroutine_attrs(coro.get(), &frame_attr, &await_attr)) break;
    if (Ref frame = coroutine_frame(coro.get())) chain[depth++] = frame.release();
    Ref awaited = attr(coro.get(), await_attr);  // None when not suspended in an await
    if (Ref inner = awaited ? unwrap_awaitable(awaited.get()) : Ref()) awaited = std::move(inner);
    coro = std::move(awaited);
  }
  for (int i = depth - 1; i >= 0; --i) {
    if (out.count < max_frames)
      out.frames[out.count++] = chain[i];
    else
      g.dec_ref(chain[i]);
  }
}

}  // namespace

bool collect_awaiter_chain(AwaiterChain& out, int max_frames) {
  out.anchor = nullptr;
  out.count = 0;
  if (max_frames > static_cast<int>(kMaxFrames)) max_frames = kMaxFrames;
  if (max_frames <= 0 || !loaded()) return false;
  // A stale exception would make the C calls below fail (a C function that
  // returns with an exception set is turned into a SystemError).
  g.err_clear();
  void* asyncio_module = imported_asyncio();
  if (!asyncio_module) return false;
  Ref task = running_task(asyncio_module);
  if (!task) return false;
  Known k;
  if (!load_known(asyncio_module, k) || !k.is_task(task.get())) {
    g.err_clear();
    return false;
  }
  if (Ref coro = task_coro(k, task.get())) {
    // The frame is on the running stack, which keeps it alive: no reference needed.
    if (Ref frame = coroutine_frame(coro.get())) out.anchor = frame.get();
  }
  Ref seen[kMaxAwaiterLevels + 1];
  seen[0] = std::move(task);
  for (int level = 1; level <= kMaxAwaiterLevels && out.count < max_frames; ++level) {
    Ref waiter = waiting_task(k, seen[level - 1].get(), true);
    if (!waiter) break;
    bool cycle = false;
    for (int i = 0; i < level; ++i) cycle = cycle || seen[i].get() == waiter.get();
    if (cycle) break;
    append_suspended_frames(k, waiter.get(), out, max_frames);
    seen[level] = std::move(waiter);
  }
  g.err_clear();
  return out.count > 0;
}

int collect_task_frames(void* task, void** frames, int max_frames) {
  if (max_frames > static_cast<int>(kMaxFrames)) max_frames = kMaxFrames;
  if (!task || max_frames <= 0 || !loaded()) return 0;
  g.err_clear();
  void* asyncio_module = imported_asyncio();
  if (!asyncio_module) return 0;
  Known k;
  if (!load_known(asyncio_module, k) || !k.is_task(task)) {
    g.err_clear();
    return 0;
  }
  // A task being stepped right now (by its own thread while we hold the GIL
  // from another) has no suspended stack: its frames are that thread's.
  if (Ref coro = task_coro(k, task)) {
    const char *frame_attr, *await_attr;
    if (!coroutine_attrs(coro.get(), &frame_attr, &await_attr)) return 0;
    const char* running_attr = g.coro_type == type_of(coro.get())  ? "cr_running"
                               : g.gen_type == type_of(coro.get()) ? "gi_running"
                                                                   : "ag_running";
    Ref running = attr(coro.get(), running_attr);
    if (!running || running.get() == g.true_object) {
      g.err_clear();
      return -1;
    }
  } else {
    return 0;  // done, or not a task after all
  }
  AwaiterChain chain;
  append_suspended_frames(k, task, chain, max_frames);
  for (int i = 0; i < chain.count; ++i) frames[i] = chain.frames[i];
  g.err_clear();
  return chain.count;
}

void release_awaiter_chain(AwaiterChain& chain) {
  for (int i = 0; i < chain.count; ++i) g.dec_ref(chain.frames[i]);
  chain.count = 0;
}

}  // namespace connleak::shim
