// connleak_python_functions (extension, include/connleak/connleak.h): the
// pool API's two hot calls as Python builtin functions, made by the shim
// itself from the CPython C API it finds at run time. A checkout through
// ctypes paid for argument conversion objects, a libffi call and the GIL
// bookkeeping of a foreign call twice per checkout + return; a METH_FASTCALL
// builtin is called like any C function of the interpreter. No extension
// module is built or installed, so every interpreter gets it (pyenv's
// included), and ctypes stays the fallback where this returns NULL.
//
// These are called BY Python code (the adapters), never from inside a hooked
// C call; they run no Python code themselves (integer and str conversions of
// exact int/str objects only).
#include <atomic>
#include <cstdint>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "connleak/connleak.h"
#include "shim/runtime/api_once.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {

namespace {

using PySsize = std::intptr_t;  // Py_ssize_t

// PyMethodDef, stable ABI (Include/methodobject.h).
struct MethodDef {
  const char* name;
  void* meth;
  int flags;
  const char* doc;
};
// METH_FASTCALL: (self, PyObject* const* args, Py_ssize_t nargs), stable ABI
// since 3.10 and the same since 3.7; the Python side asks only on >= 3.8.
constexpr int kMethFastcall = 0x0080;

struct FastApi {
  unsigned long long (*long_as_ull)(void*);
  long (*long_as_long)(void*);
  void* (*long_from_ull)(unsigned long long);
  void* (*long_from_long)(long);
  const char* (*unicode_as_utf8)(void*);
  void* (*err_occurred)();
  void (*err_set_string)(void*, const char*);
  void* (*cfunction_new_ex)(void*, void*, void*);
  void* (*tuple_pack)(PySsize, ...);
  void (*dec_ref)(void*);
  int (*gil_check)();
  void* none;
  void* type_error;  // PyExc_TypeError: a pointer to the type object
};

bool fill(FastApi& t) {
  void** type_error = nullptr;
  bool ok = load_symbol(t.long_as_ull, "PyLong_AsUnsignedLongLong") &&
            load_symbol(t.long_as_long, "PyLong_AsLong") &&
            load_symbol(t.long_from_ull, "PyLong_FromUnsignedLongLong") &&
            load_symbol(t.long_from_long, "PyLong_FromLong") &&
            load_symbol(t.unicode_as_utf8, "PyUnicode_AsUTF8") &&
            load_symbol(t.err_occurred, "PyErr_Occurred") &&
            load_symbol(t.err_set_string, "PyErr_SetString") &&
            load_symbol(t.cfunction_new_ex, "PyCFunction_NewEx") &&
            load_symbol(t.tuple_pack, "PyTuple_Pack") && load_symbol(t.dec_ref, "Py_DecRef") &&
            load_symbol(t.gil_check, "PyGILState_Check") && load_symbol(t.none, "_Py_NoneStruct") &&
            load_symbol(type_error, "PyExc_TypeError");
  if (ok) t.type_error = *type_error;
  return ok;
}

constinit ApiOnce<FastApi> g_api{fill};
// Valid once loaded() returned true.
constinit const FastApi& g = g_api.table();

bool loaded() {
  return g_api.get() != nullptr;
}

bool arity(PySsize nargs, PySsize want, const char* message) {
  if (nargs == want) return true;
  g.err_set_string(g.type_error, message);
  return false;
}

// -1 with an exception set (OverflowError, TypeError) is the failure.
bool to_ull(void* obj, unsigned long long* out) {
  *out = g.long_as_ull(obj);
  return *out != static_cast<unsigned long long>(-1) || !g.err_occurred();
}

// checkout(pool_id, key_kind, key, task_name, task) -> checkout id (0: not
// recorded). task_name a str or None; task the asyncio task or None.
void* fast_checkout(void*, void* const* args, PySsize nargs) {
  if (!arity(nargs, 5, "checkout(pool_id, key_kind, key, task_name, task)")) return nullptr;
  unsigned long long pool = 0, key = 0;
  if (!to_ull(args[0], &pool)) return nullptr;
  long kind = g.long_as_long(args[1]);
  if (kind == -1 && g.err_occurred()) return nullptr;
  if (!to_ull(args[2], &key)) return nullptr;
  const char* task_name = nullptr;
  if (args[3] != g.none && !(task_name = g.unicode_as_utf8(args[3]))) return nullptr;
  unsigned long long id = connleak_checkout(pool, static_cast<int>(kind), key, task_name);
  if (id && args[4] != g.none) connleak_checkout_task(id, args[4]);
  return g.long_from_ull(id);
}

// checkin(checkout_id, how) -> 0, or -1 for an unknown or ended checkout.
void* fast_checkin(void*, void* const* args, PySsize nargs) {
  if (!arity(nargs, 2, "checkin(checkout_id, how)")) return nullptr;
  unsigned long long id = 0;
  if (!to_ull(args[0], &id)) return nullptr;
  long how = g.long_as_long(args[1]);
  if (how == -1 && g.err_occurred()) return nullptr;
  return g.long_from_long(connleak_checkin(id, static_cast<int>(how)));
}

// Static: a builtin function points at its method definition for ever.
MethodDef g_checkout{"checkout", reinterpret_cast<void*>(&fast_checkout), kMethFastcall,
                     "connleak_checkout for Python: (pool_id, key_kind, key, task_name, task)"};
MethodDef g_checkin{"checkin", reinterpret_cast<void*>(&fast_checkin), kMethFastcall,
                    "connleak_checkin for Python: (checkout_id, how)"};

}  // namespace

}  // namespace connleak::shim

using namespace connleak::shim;

CONNLEAK_EXPORT void* connleak_python_functions(void) {
  if (!loaded() || !g.gil_check()) return nullptr;
  Reentry guard;
  void* checkout = g.cfunction_new_ex(&g_checkout, nullptr, nullptr);
  void* checkin = checkout ? g.cfunction_new_ex(&g_checkin, nullptr, nullptr) : nullptr;
  void* pair = checkin ? g.tuple_pack(2, checkout, checkin) : nullptr;
  if (checkout) g.dec_ref(checkout);
  if (checkin) g.dec_ref(checkin);
  return pair;  // a new reference (ctypes' py_object restype takes it), or NULL with an exception
}
