#pragma once
// The live metrics file (option metrics_file): the Prometheus text of a report,
// written to a temporary name beside PATH and renamed over it, so
// node_exporter's textfile collector never reads half a file.
#include <string>

#include "collector/core/fork_mutex.h"
#include "collector/report/report_model.h"

namespace connleak {

// Mode 0644: a scraper usually runs as another user, and the text carries no
// stack, user name or statement. On failure *error is one line. Once an exit
// report's metrics are written, later calls (a live view collected before the
// exit) write nothing.
bool write_metrics_file(const std::string& path, const Report& report, std::string* error);

// Held by the shim's thread while it collects and writes the live metrics, and
// by the exit report while it is collected: two reports built at once race on
// the symbolizer and the snapshots (seen as std::bad_alloc in the exit report).
ForkMutex& report_collect_mutex();

}  // namespace connleak
