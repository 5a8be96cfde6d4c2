// The functions of include/connleak/connleak.h, exported by the shim.
#include "connleak/connleak.h"

#include "collector/registry.h"
#include "shim/export.h"
#include "shim/runtime.h"

CONNLEAK_EXPORT int connleak_dump(void) {
  return connleak::shim::write_dump("request") || connleak::shim::options().enabled ? 0 : -1;
}

CONNLEAK_EXPORT long connleak_check(void) {
  return static_cast<long>(connleak::Registry::instance().open_count());
}
