// The exported libpq hooks and the wrappers dlsym hands out. Both resolve the
// real function, then run the same body (libpq_track.cpp).
#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "collector/core/string_table.h"
#include "shim/hooks/libpq_impl.h"
#include "shim/runtime/export.h"
#include "shim/track/tracking.h"

using namespace connleak::shim;

// Exported hooks: the real function is found in the caller's scope. The hit
// path hands the caller's cached Resolution to the body by reference and
// tail-calls it, with no frame of its own; everything else (a first call, a
// tail jump, a missing function) is the miss_ function's.
#define CONNLEAK_HOOK(name, ret, fail, params, args)                                     \
  namespace {                                                                            \
  __attribute__((noinline)) ret miss_##name(const void* caller, CONNLEAK_STRIP params) { \
    const Resolution* hit =                                                              \
        detail::resolve_hit_slow(kSym_##name, reinterpret_cast<std::uintptr_t>(caller)); \
    Resolution r = hit ? *hit : resolve_miss(kSym_##name, caller);                       \
    if (!r.real) {                                                                       \
      report_missing(#name);                                                             \
      return fail;                                                                       \
    }                                                                                    \
    return impl_##name(r, CONNLEAK_STRIP args);                                          \
  }                                                                                      \
  }                                                                                      \
  CONNLEAK_EXPORT ret name params {                                                      \
    const void* caller = __builtin_return_address(0);                                    \
    const Resolution* r = resolve_hit(kSym_##name, caller);                              \
    if (__builtin_expect(r == nullptr || r->real == nullptr, 0))                         \
      return miss_##name(caller, CONNLEAK_STRIP args);                                   \
    return impl_##name(*r, CONNLEAK_STRIP args);                                         \
  }
#define CONNLEAK_COMMAND(name, ret, fail, params, args) CONNLEAK_HOOK(name, ret, fail, params, args)
#define CONNLEAK_CALL(name)
#include "shim/hooks/libpq_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL

// --- dlsym wrappers ------------------------------------------------------------
// ctypes (psycopg 3's pure-Python libpq binding) looks functions up with
// dlsym(libpq_handle, name) and calls the pointer: no PLT, so no hook fires.
// Our dlsym hands back a wrapper bound to that library copy instead: one
// wrapper per (function, copy slot), each with its own real function.
namespace connleak::shim {
namespace {

constexpr int kCopies = 4;  // distinct libpq copies reached through dlsym
struct Slot {
  std::atomic<void*> real{nullptr};
  std::atomic<const char*> module{nullptr};
};
Slot g_slots[kSymbolCount][kCopies];
constinit ForkMutex g_slots_mutex;

Resolution slot_resolution(SymbolId id, int copy) {
  Resolution r;
  r.real = g_slots[id][copy].real.load(std::memory_order_acquire);
  r.module = g_slots[id][copy].module.load(std::memory_order_relaxed);
  note_active_module(r.module);
  return r;  // never a self-call: ctypes' caller is libffi, not libpq
}

template <auto Impl, SymbolId Id, int Copy>
struct Wrapper;
template <typename R, typename... A, R (*Impl)(const Resolution&, A...), SymbolId Id, int Copy>
struct Wrapper<Impl, Id, Copy> {
  static R call(A... args) { return Impl(slot_resolution(Id, Copy), args...); }
};

template <auto Impl, SymbolId Id, std::size_t... Copy>
constexpr auto wrappers_for(std::index_sequence<Copy...>) {
  return std::array<void*, kCopies>{reinterpret_cast<void*>(&Wrapper<Impl, Id, Copy>::call)...};
}

struct WrapperSet {
  const char* name;
  SymbolId id;
  std::array<void*, kCopies> fns;
};
const WrapperSet kWrappers[] = {
#define CONNLEAK_HOOK(name, ...) \
  {#name, kSym_##name,           \
   wrappers_for<&impl_##name, kSym_##name>(std::make_index_sequence<kCopies>())},
#define CONNLEAK_COMMAND(name, ...) CONNLEAK_HOOK(name)
#define CONNLEAK_CALL(name)
#include "shim/hooks/libpq_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL
};

}  // namespace

void* libpq_dlsym_wrapper(const char* name, void* real) {
  if (!name || name[0] != 'P' || name[1] != 'Q') return nullptr;
  const WrapperSet* set = nullptr;
  for (const WrapperSet& w : kWrappers)
    if (std::strcmp(w.name, name) == 0) set = &w;
  if (!set) return nullptr;
  std::lock_guard<ForkMutex> lock(g_slots_mutex);
  for (int copy = 0; copy < kCopies; ++copy) {
    Slot& slot = g_slots[set->id][copy];
    void* bound = slot.real.load(std::memory_order_relaxed);
    if (bound == real) return set->fns[copy];
    if (bound) continue;
    Dl_info info{};
    slot.module.store(
        connleak::intern_string(dladdr(real, &info) && info.dli_fname ? info.dli_fname : ""),
        std::memory_order_relaxed);
    slot.real.store(real, std::memory_order_release);
    return set->fns[copy];
  }
  return nullptr;  // more copies than slots: that copy stays untracked
}

}  // namespace connleak::shim
