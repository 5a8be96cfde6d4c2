#pragma once
// One watchdog round: which open connections crossed a threshold since the
// last round. Each connection is flagged once per kind (once per transaction
// for idle_in_transaction), so a warning is never repeated for the same cause.
#include <string>
#include <vector>

#include "collector/core/registry.h"
#include "collector/policy/suppressions.h"
#include "collector/report/report_builder.h"

namespace connleak {

struct Thresholds {
  double lifetime_seconds = 0;  // 0 = off
  double txn_seconds = 0;       // 0 = off
  double idle_seconds = 0;      // 0 = off
  bool any() const { return lifetime_seconds > 0 || txn_seconds > 0 || idle_seconds > 0; }
};

struct RaisedAlert {
  AlertKind kind;     // kLifetime | kIdleInTransaction | kIdle
  ConnRecord record;  // copy taken under the shard lock, alert fields set
};

struct ScanResult {
  std::vector<RaisedAlert> alerts;
  bool complete = true;  // false: a shard was busy past the deadline (checked next round)
};

ScanResult watchdog_scan(Registry& registry, const Thresholds& thresholds, std::int64_t now_mono,
                         std::int64_t deadline_mono);

// Renders new alerts grouped by kind and acquisition site (a flood of 10,000
// leaks from one site is one block), at most `max_groups` blocks; the rest is
// one line pointing at the report.
// Groups whose acquisition stack matches `suppressions` are left out.
std::vector<std::string> render_alerts(const std::vector<RaisedAlert>& alerts,
                                       const Thresholds& thresholds, std::int64_t now_mono,
                                       Symbolizer& symbolizer, const StateProbe& probe,
                                       std::size_t max_groups,
                                       const Suppressions* suppressions = nullptr);

}  // namespace connleak
