#include "shim/hooks/libc_real.h"

#include <dlfcn.h>

namespace connleak::shim::libc {

const char* const kNames[kCount] = {
#define CONNLEAK_LIBC(name, ...) #name,
#include "shim/hooks/libc_symbols.inc"
#undef CONNLEAK_LIBC
};

constinit std::atomic<void*> g_real[kCount] = {};

void* lookup(Id id) {
  // Racing threads store the same address: no lock needed (and none may be
  // taken here: this runs inside every hooked I/O call before our constructors).
  void* fn = dlsym(RTLD_NEXT, kNames[id]);
  g_real[id].store(fn, std::memory_order_relaxed);
  return fn;
}

}  // namespace connleak::shim::libc
