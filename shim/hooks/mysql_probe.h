#pragma once
#include "collector/core/registry.h"
#include "collector/report/report_builder.h"

namespace connleak::shim {
// State of a MySQL/MariaDB handle ("connected", "failed", "initialized", ...)
// and its server connection id, asked from the client library that owns it.
HandleState mysql_state(const ConnRecord& record);
}  // namespace connleak::shim
