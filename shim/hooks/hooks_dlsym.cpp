// The C side of the dlsym hook (the entry point is dlsym_hook.S).
#include <dlfcn.h>

#include "collector/core/fork_safe_static.h"
#include "shim/hooks/libpq_impl.h"
#include "shim/hooks/real_symbol.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"

using DlsymFn = void* (*)(void*, const char*);

extern "C" {
// Read by the assembly stub: the next dlsym after ours (glibc's).
__attribute__((visibility("hidden"))) DlsymFn connleak_real_dlsym = nullptr;

__attribute__((visibility("hidden"))) DlsymFn connleak_init_real_dlsym() {
  if (!connleak_real_dlsym) {
    // dlvsym is not interposed; GLIBC_2.34 is where dlsym moved into libc.
    void* fn = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.34");
    if (!fn) fn = dlvsym(RTLD_NEXT, "dlsym", "GLIBC_2.2.5");
    __atomic_store_n(&connleak_real_dlsym, reinterpret_cast<DlsymFn>(fn), __ATOMIC_RELEASE);
  }
  return connleak_real_dlsym;
}

// A lookup in one object's scope: the result does not depend on the caller,
// so this may be an ordinary function.
__attribute__((visibility("hidden"))) void* connleak_dlsym_handle(void* handle, const char* name,
                                                                  const void* caller) {
  DlsymFn real = connleak_init_real_dlsym();
  if (!real) return nullptr;
  void* sym = real(handle, name);
  // The shim's own lookups always get the real function.
  const connleak::shim::ObjectRange& self = connleak::fork_safe_static([] {
    return new connleak::shim::ObjectRange(
        connleak::shim::object_range_of(reinterpret_cast<const void*>(&connleak_init_real_dlsym)));
  });
  if (!sym || self.contains(reinterpret_cast<std::uintptr_t>(caller)) ||
      connleak::shim::in_shim() || self.contains(reinterpret_cast<std::uintptr_t>(sym)) ||
      !connleak::shim::options().enabled)
    return sym;
  void* wrapper = connleak::shim::libpq_dlsym_wrapper(name, sym);
  return wrapper ? wrapper : sym;
}
}
