// dlclose: after an object is unloaded its address range can be reused by
// another object, so cached real-function lookups keyed by that range retire.
#include <dlfcn.h>

#include "shim/export.h"
#include "shim/guard.h"
#include "shim/real_symbol.h"

CONNLEAK_EXPORT int dlclose(void* handle) {
  using Fn = int (*)(void*);
  static Fn real = reinterpret_cast<Fn>(dlsym(RTLD_NEXT, "dlclose"));
  if (!real) return -1;
  int rc = real(handle);
  if (rc == 0 && !connleak::shim::in_shim()) {
    connleak::shim::Reentry guard;
    connleak::shim::retire_unloaded_objects();
  }
  return rc;
}
