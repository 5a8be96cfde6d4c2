#pragma once
#include <string>

#include "collector/core/registry.h"
#include "collector/report/report_builder.h"

namespace connleak::shim {
// "connected" | "failed" | "connecting" | "unknown" and the backend pid, asked
// from the libpq copy that created the handle (only while it is still loaded).
HandleState libpq_state(const ConnRecord& record);
}  // namespace connleak::shim
