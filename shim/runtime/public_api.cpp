// The functions of include/connleak/connleak.h, exported by the shim.
#include "collector/core/registry.h"
#include "connleak/connleak.h"
#include "shim/runtime/export.h"
#include "shim/runtime/runtime.h"

CONNLEAK_EXPORT int connleak_dump(void) {
  return connleak::shim::write_dump("request") || connleak::shim::options().enabled ? 0 : -1;
}

CONNLEAK_EXPORT long connleak_check(void) {
  long open = 0;
  connleak::Registry::instance().scan(
      connleak::mono_now_ns() + 500'000'000,
      [&](const connleak::ConnRecord& r) { open += !r.ignored && !r.inherited; });
  return open;
}

CONNLEAK_EXPORT int connleak_ignore(const void* handle) {
  return connleak::Registry::instance().set_ignored(reinterpret_cast<std::uintptr_t>(handle)) ? 0
                                                                                              : -1;
}
