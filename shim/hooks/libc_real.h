#pragma once
// The real libc function behind each hook of libc_symbols.inc: glibc's, found
// with dlsym(RTLD_NEXT) and cached in constant-initialized atomics. A hook may
// run before our constructors, so each slot is filled on first use; the
// runtime fills the exit functions' at start, so the _exit hook reached from
// a signal handler never calls dlsym there.
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#include <atomic>

namespace connleak::shim::libc {

#define CONNLEAK_LIBC(name, ret, params) using name##_fn = ret(*) params;
#include "shim/hooks/libc_symbols.inc"
#undef CONNLEAK_LIBC

enum Id : int {
#define CONNLEAK_LIBC(name, ...) k_##name,
#include "shim/hooks/libc_symbols.inc"
#undef CONNLEAK_LIBC
  kCount
};

extern const char* const kNames[kCount];
extern std::atomic<void*> g_real[kCount];

void* lookup(Id id);  // dlsym(RTLD_NEXT), stored in g_real[id]; null if absent

template <Id id>
inline void* real() {
  void* fn = g_real[id].load(std::memory_order_relaxed);
  return __builtin_expect(fn != nullptr, 1) ? fn : lookup(id);
}

}  // namespace connleak::shim::libc

// The real function for hook `name`, typed; null when libc lacks it (a hook
// then fails the call with ENOSYS rather than crash).
#define CONNLEAK_LIBC_REAL(name)                       \
  reinterpret_cast<::connleak::shim::libc::name##_fn>( \
      ::connleak::shim::libc::real<::connleak::shim::libc::k_##name>())
