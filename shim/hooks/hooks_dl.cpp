// dlclose: after an object is unloaded its address range can be reused by
// another object, so cached real-function lookups keyed by that range retire.
#include <dlfcn.h>

#include "shim/hooks/libc_real.h"
#include "shim/hooks/real_symbol.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {
DlcloseFn real_dlclose() {
  // One lookup for the hook and for the shim's own closes (real_symbol.cpp).
  return CONNLEAK_LIBC_REAL(dlclose);
}
}  // namespace connleak::shim

CONNLEAK_EXPORT int dlclose(void* handle) {
  connleak::shim::DlcloseFn real = connleak::shim::real_dlclose();
  if (!real) return -1;
  int rc = real(handle);
  if (rc == 0 && !connleak::shim::in_shim()) {
    connleak::shim::Reentry guard;
    connleak::shim::retire_unloaded_objects();
  }
  return rc;
}
