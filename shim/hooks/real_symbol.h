#pragma once
// Finds the real definition of an interposed function *in the caller's scope*.
//
// Why not dlsym(RTLD_NEXT): a module loaded with dlopen(RTLD_LOCAL) (every
// Python extension) binds to our hook, but its libpq is not in the global
// scope, so RTLD_NEXT finds nothing; and a wheel may bundle a second libpq
// under a renamed soname, where the first match would be the WRONG copy.
// Looking the symbol up through a handle of the calling object searches that
// object and its own dependencies: the libpq that caller was linked against.
#include <array>
#include <atomic>
#include <cstdint>

#include "shim/hooks/symbols.h"

namespace connleak::shim {

struct Resolution {
  void* real = nullptr;     // null: no definition reachable from the caller
  bool self_call = false;   // caller lives in the same object as `real`
  const char* module = "";  // interned path of the object that defines `real`
  // A libpq command's PQtransactionStatus from the same copy, looked up with
  // `real` (what after_command calls); null: look it up with resolve_in.
  void* txn_status = nullptr;
};

namespace detail {
// Every slot all zero bits (module null, not ""): the caller table then lives
// in .bss instead of .data, where each slot's "" cost a start-up relocation
// (3,456 of them) and its pages a copy on write in every process (issue 19).
// A slot is read only once ready[id] says it was written whole.
consteval std::array<Resolution, kSymbolCount> unwritten_resolutions() {
  std::array<Resolution, kSymbolCount> all{};
  for (Resolution& r : all) r.module = nullptr;
  return all;
}
// One entry per calling object, append-only: an entry is never reused for
// another object (a reader may still hold it), only retired on dlclose.
// Everything is constant-initialized, so lookups work before our constructors.
// res[id] is written once, under a lock, before ready[id] publishes it, and
// never again: readers take it by reference without copying.
struct CallerEntry {
  std::atomic<std::uintptr_t> lo{0};
  std::atomic<std::uintptr_t> hi{0};  // 0 = empty or retired
  const char* path = nullptr;         // "" for the main program
  std::atomic<bool> ready[kSymbolCount] = {};
  std::array<Resolution, kSymbolCount> res = unwritten_resolutions();
};
// Per symbol, the entry that last answered it: a function is nearly always
// called from one object, so the scan (several entries: the program, libpq
// calling its own exports, ...) is skipped. Only a hint: entries are never
// reused for another object, and a retired one (hi = 0) matches nothing.
extern std::atomic<CallerEntry*> g_hint[kSymbolCount];
// __thread: no TLS wrapper call on the hit path (it needs no initializer).
extern __thread const char* t_active_module __attribute__((tls_model("initial-exec")));
const Resolution* resolve_hit_slow(SymbolId id, std::uintptr_t caller);
}  // namespace detail

// Every hooked client call starts here. The hit path (the caller's object is
// the one that called this function last, and it was resolved for it) is a
// few loads and no call: the caller's cached Resolution, by reference. Null
// on a miss (another calling object, a first call, a tail jump out of a
// hook, a caller the table has no room for): then resolve_hit_slow, which
// scans the table, and resolve_miss.
inline const Resolution* resolve_hit(SymbolId id, const void* caller) {
  const auto a = reinterpret_cast<std::uintptr_t>(caller);
  detail::CallerEntry* e = detail::g_hint[id].load(std::memory_order_relaxed);
  if (__builtin_expect(e != nullptr, 1) && a >= e->lo.load(std::memory_order_relaxed) &&
      a < e->hi.load(std::memory_order_acquire) &&
      __builtin_expect(e->ready[id].load(std::memory_order_acquire), 1)) {
    const Resolution& r = e->res[id];
    // Entries never cover our own object, so a hit is never a tail jump out
    // of a hook; see resolve_miss for why the module is noted.
    if (r.real) detail::t_active_module = r.module;
    return &r;
  }
  return nullptr;
}

// The same by value, resolving (and caching) on a miss.
Resolution resolve_miss(SymbolId id, const void* caller);
inline Resolution resolve(SymbolId id, const void* caller) {
  if (const Resolution* r = resolve_hit(id, caller)) return *r;
  if (const Resolution* r = detail::resolve_hit_slow(id, reinterpret_cast<std::uintptr_t>(caller)))
    return *r;
  return resolve_miss(id, caller);
}

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
