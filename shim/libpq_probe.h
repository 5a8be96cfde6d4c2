#pragma once
#include <string>

#include "collector/registry.h"

namespace connleak::shim {
// "connected" | "failed" | "connecting" | "unknown", asked from the libpq copy
// that created the handle (only while that copy is still loaded).
std::string libpq_state(const ConnRecord& record);
}  // namespace connleak::shim
