#pragma once
// Finds the real definition of an interposed function *in the caller's scope*.
//
// Why not dlsym(RTLD_NEXT): a module loaded with dlopen(RTLD_LOCAL) (every
// Python extension) binds to our hook, but its libpq is not in the global
// scope, so RTLD_NEXT finds nothing; and a wheel may bundle a second libpq
// under a renamed soname, where the first match would be the WRONG copy.
// Looking the symbol up through a handle of the calling object searches that
// object and its own dependencies: the libpq that caller was linked against.
#include <cstdint>

#include "shim/hooks/symbols.h"

namespace connleak::shim {

struct Resolution {
  void* real = nullptr;     // null: no definition reachable from the caller
  bool self_call = false;   // caller lives in the same object as `real`
  const char* module = "";  // interned path of the object that defines `real`
};

Resolution resolve(SymbolId id, const void* caller);

// For hooks that get their Resolution elsewhere (the dlsym wrappers): the
// library copy this thread is about to run, so a tail jump out of it resolves
// in the same copy (see resolve()).
void note_active_module(const char* module);

// The definition of `id` inside one client-library copy (an interned module
// path from a Resolution): what a hook calls besides the real function
// (PQstatus, PQtransactionStatus, ...) must come from the same copy, whoever
// the caller is (through ctypes the caller is libffi, which links no libpq).
void* resolve_in(const char* module, SymbolId id);

// Address range [lo, hi) of the object containing `address`, or {0,0}.
struct ObjectRange {
  std::uintptr_t lo = 0;
  std::uintptr_t hi = 0;
  bool contains(std::uintptr_t a) const { return a >= lo && a < hi; }
};
ObjectRange object_range_of(const void* address);

}  // namespace connleak::shim

namespace connleak::shim {
// libc's dlclose (hooks_dl.cpp), looked up once.
using DlcloseFn = int (*)(void*);
DlcloseFn real_dlclose();
// dlclose that bypasses our own dlclose hook.
void close_dl_handle(void* handle);
// Retires cache entries whose object is no longer mapped (after a dlclose).
void retire_unloaded_objects();
}  // namespace connleak::shim
