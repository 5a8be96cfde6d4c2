#pragma once
// What the pictures (Chrome trace, HTML timeline) and the metrics share: the
// time spans of connections, checkouts and transactions, read back from a
// merged report's ISO timestamps, and the snapshot markers of the reports that
// a merge folds away (pool_exhausted / server_refused dumps).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

// "2026-11-21T10:00:00.123Z" -> microseconds since the epoch; nullopt when the
// text is not that shape (a report anyone may have edited).
std::optional<std::int64_t> parse_iso8601_us(std::string_view text);

// One pool_exhausted / server_refused snapshot: merge_reports keeps only one
// trigger for the whole set, so the CLI takes these from the inputs first.
struct SnapshotMark {
  std::int64_t pid = 0;
  Named<Trigger> trigger;  // kPoolExhausted | kServerRefused
  std::string at;          // the snapshot's generated_at
  std::optional<std::uint64_t> pool;
  std::optional<double> waited_seconds;
  std::optional<std::string> refusal;
};
std::vector<SnapshotMark> snapshot_marks(const std::vector<Report>& reports);

struct Span {
  std::int64_t begin_us = 0;
  std::int64_t end_us = 0;
  bool open = false;  // still open when the report was written
};
// Opened until closed_at, or opened + age_seconds when still open (the merged
// report's generated_at is the latest process's, not this one's).
std::optional<Span> connection_span(const Connection& c);
// Checked out until returned_at, else checked_out_at + held_seconds.
std::optional<Span> checkout_span(const Checkout& c);
// The transaction a connection was in when the report was written: it began
// transaction.seconds before the connection's end. nullopt when idle.
std::optional<Span> transaction_span(const Connection& c);
// When an alert fired: `after_seconds` after the span began.
std::int64_t alert_time_us(const Span& span, const AlertInfo& alert);

// "host=db port=5432 dbname=app" from a redacted target: only host, port and
// database, whatever the spelling (conninfo, URI, MySQL's "user@host:port/db"),
// so a metric label or lane title carries no user data beyond where it went.
std::string target_endpoint(const std::string& target);

}  // namespace connleak
