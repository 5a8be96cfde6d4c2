#include "collector/policy/watchdog.h"

#include <algorithm>
#include <map>
#include <tuple>

#include "collector/report/format/report_text.h"

namespace connleak {

namespace {

// Agroal's rule: a connection that holds something (a transaction; once pools
// are tracked, a checkout) and has sent nothing for the threshold. A statement
// still running is work, not idleness. Flagged once per idle period: returns
// the start of an idle period due and not alerted yet, 0 otherwise.
std::int64_t idle_due(const LiveConn& live, std::int64_t idle_ns, std::int64_t now_mono) {
  auto state = static_cast<TxnState>(live.txn.load(std::memory_order_acquire));
  const bool in_txn = state == TxnState::kInTransaction || state == TxnState::kInError;
  // Hook point for pools: `|| checked_out` once checkouts are recorded.
  const bool holds = in_txn;
  if (!holds) return 0;
  const activity::Activity* a = live_activity_if(live);
  if (a && a->in_flight.load(std::memory_order_relaxed)) return 0;
  std::int64_t since = live.txn_since_mono.load(std::memory_order_relaxed);
  const std::int64_t sent = a ? a->last_sent_mono.load(std::memory_order_relaxed) : 0;
  const std::int64_t done = a ? a->last_done_mono.load(std::memory_order_relaxed) : 0;
  if (sent > since) since = sent;
  if (done > since) since = done;
  if (since == 0 || now_mono - since < idle_ns) return 0;
  if (live.idle_alerted.load(std::memory_order_relaxed) == since) return 0;
  return since;
}

// A transaction open past the threshold, not alerted on yet.
bool txn_due(const LiveConn& live, std::int64_t txn_ns, std::int64_t now_mono) {
  auto state = static_cast<TxnState>(live.txn.load(std::memory_order_acquire));
  if (state != TxnState::kInTransaction && state != TxnState::kInError) return false;
  std::uint32_t gen = live.txn_generation.load(std::memory_order_relaxed);
  std::int64_t since = live.txn_since_mono.load(std::memory_order_relaxed);
  return live.txn_alerted.load(std::memory_order_relaxed) != gen && now_mono - since >= txn_ns;
}

}  // namespace

// Two passes, neither of which touches every connection's state: the
// lifetime round reads the records' first cache line and skips shards whose
// oldest unflagged record is younger than the threshold; the transaction and
// idle checks visit only the connections in a transaction (the LiveConn
// pool's bitmap), and take a shard lock only for one that is due.
ScanResult watchdog_scan(Registry& registry, const Thresholds& th, std::int64_t now_mono,
                         std::int64_t deadline_mono) {
  ScanResult result;
  const auto lifetime_ns = static_cast<std::int64_t>(th.lifetime_seconds * 1e9);
  const auto txn_ns = static_cast<std::int64_t>(th.txn_seconds * 1e9);
  const auto idle_ns = static_cast<std::int64_t>(th.idle_seconds * 1e9);
  if (lifetime_ns > 0) {
    // Ignored handles are intentional; inherited ones belong to the parent:
    // scan_lifetime leaves both out.
    result.complete =
        registry.scan_lifetime(deadline_mono, now_mono - lifetime_ns, [&](ConnRecord& rec) {
          rec.alerts |= kAlertLifetime;
          rec.lifetime_alert_ms = ConnRecord::alert_ms(now_mono - rec.opened.mono_ns);
          result.alerts.push_back({AlertKind::kLifetime, rec});
        });
  }
  if (idle_ns <= 0 && txn_ns <= 0) return result;
  live_for_each_in_txn([&](LiveConn& live) {
    const std::uintptr_t handle = live.handle.load(std::memory_order_acquire);
    if (!handle) return;
    if (!(idle_ns > 0 && idle_due(live, idle_ns, now_mono)) &&
        !(txn_ns > 0 && txn_due(live, txn_ns, now_mono)))
      return;
    // Due: raise it on the record (checked again under the lock; the
    // LiveConn may belong to another registry, or have been reused).
    const int found = registry.visit_open(handle, deadline_mono, [&](ConnRecord& rec) {
      if (rec.live != &live || rec.ignored || rec.inherited) return;
      if (idle_ns > 0) {
        if (const std::int64_t since = idle_due(live, idle_ns, now_mono)) {
          live.idle_alerted.store(since, std::memory_order_relaxed);
          rec.alerts |= kAlertIdle;
          rec.idle_alert_ms = ConnRecord::alert_ms(now_mono - since);
          result.alerts.push_back({AlertKind::kIdle, rec});
        }
      }
      if (txn_ns > 0 && txn_due(live, txn_ns, now_mono)) {
        const std::int64_t since = live.txn_since_mono.load(std::memory_order_relaxed);
        live.txn_alerted.store(live.txn_generation.load(std::memory_order_relaxed),
                               std::memory_order_relaxed);
        rec.alerts |= kAlertIdleInTransaction;
        rec.txn_alert_ms = ConnRecord::alert_ms(now_mono - since);
        rec.txn_alert_stack = live.txn_stack.load(std::memory_order_relaxed);
        rec.txn_alert_py_stack = live.txn_py_stack.load(std::memory_order_relaxed);
        result.alerts.push_back({AlertKind::kIdleInTransaction, rec});
      }
    });
    if (found < 0) result.complete = false;
  });
  return result;
}

std::vector<std::string> render_alerts(const std::vector<RaisedAlert>& alerts, const Thresholds& th,
                                       std::int64_t now_mono, Symbolizer& symbolizer,
                                       const StateProbe& probe, std::size_t max_groups,
                                       const Suppressions* suppressions) {
  // Group by kind and the stacks shown in the block; order by size, then first id.
  // Python stacks are part of the key: in a Python host the native stacks are
  // the interpreter's and alike for every site. The kind's name leads the key
  // so equal-sized groups keep their alphabetical order.
  using Key = std::tuple<std::string, StackId, StackId, StackId, StackId>;
  std::map<Key, std::vector<const RaisedAlert*>> groups;
  for (const RaisedAlert& a : alerts) {
    bool txn = a.kind == AlertKind::kIdleInTransaction;
    groups[{std::string(to_string(a.kind)), a.record.open_stack, a.record.py_open_stack,
            txn ? a.record.txn_alert_stack : 0, txn ? a.record.txn_alert_py_stack : 0}]
        .push_back(&a);
  }
  std::vector<std::vector<const RaisedAlert*>> ordered;
  for (auto& [key, members] : groups) {
    std::sort(members.begin(), members.end(),
              [](auto* a, auto* b) { return a->record.id < b->record.id; });
    ordered.push_back(std::move(members));
  }
  std::sort(ordered.begin(), ordered.end(), [](const auto& a, const auto& b) {
    if (a.size() != b.size()) return a.size() > b.size();
    return a.front()->record.id < b.front()->record.id;
  });
  std::vector<std::string> out;
  std::size_t hidden = 0;
  for (const auto& members : ordered) {
    std::vector<Connection> views;
    // Only the handles listed in the block are looked at in detail.
    for (std::size_t i = 0; i < members.size() && i < 5; ++i)
      views.push_back(open_connection_view(members[i]->record, false, now_mono, symbolizer, probe));
    // The group shares its acquisition stack: one match decides for all.
    if (suppressions && suppressions->match(views.front().acquired)) continue;
    if (out.size() >= max_groups) {
      hidden += members.size();
      continue;
    }
    const AlertKind kind = members.front()->kind;
    double threshold = kind == AlertKind::kLifetime ? th.lifetime_seconds
                       : kind == AlertKind::kIdle   ? th.idle_seconds
                                                    : th.txn_seconds;
    out.push_back(render_alert(kind, threshold, views, members.size()));
  }
  if (hidden > 0) {
    out.push_back("connleak: WARNING: " + std::to_string(hidden) +
                  " more connection(s) crossed a threshold this round; see the exit report\n");
  }
  return out;
}

}  // namespace connleak
