// MySQL / MariaDB client hooks (to be written).
#include "shim/mysql_probe.h"

namespace connleak::shim {
HandleState mysql_state(const ConnRecord&) { return {}; }
}  // namespace connleak::shim
