#pragma once
// The Chrome Trace Event Format (JSON object form), which Perfetto UI and
// chrome://tracing open: one process per pid, one track per thread;
// connections, checkouts and open transactions as complete ("X") events, or as
// async ("b"/"e") events when they overlap without nesting on a thread (X
// events on one track must nest); alerts and pool_exhausted / server_refused
// snapshots as instant events. Stacks, target and last statement go in `args`;
// they come from the report, which is already redacted and normalized.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "collector/report/report_model.h"
#include "collector/report/report_timeline.h"

namespace connleak {

nlohmann::ordered_json to_trace(const Report& report, const std::vector<SnapshotMark>& marks = {});
std::string render_trace(const Report& report,
                         const std::vector<SnapshotMark>& marks = {});  // newline-terminated

}  // namespace connleak
