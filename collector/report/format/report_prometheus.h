#pragma once
// The Prometheus text exposition format (version 0.0.4), for node_exporter's
// textfile collector or any scraper: OpenTelemetry's connection-pool metrics
// in Prometheus spelling (db.client.connection.count -> db_client_connection_count,
// durations in seconds with the unit suffix) plus connleak's own series.
// Labels are bounded: pool names, libraries, alert kinds and targets reduced
// to host/port/dbname; never a stack, a user name or a statement.
#include <string>
#include <vector>

#include "collector/report/report_model.h"
#include "collector/report/report_timeline.h"

namespace connleak {

std::string render_prometheus(const Report& report, const std::vector<SnapshotMark>& marks = {});

}  // namespace connleak
