#include "collector/report/report_merge.h"

#include <algorithm>
#include <set>

namespace connleak {

namespace {

void add(Summary& into, const Summary& s) {
  into.opened += s.opened;
  into.closed += s.closed;
  into.open += s.open;
  into.leaked += s.leaked;
  into.flagged += s.flagged;
  into.double_closes += s.double_closes;
  into.unknown_closes += s.unknown_closes;
  into.resets += s.resets;
  into.inherited += s.inherited;
  into.ignored += s.ignored;
  into.complete = into.complete && s.complete;
  into.pooled += s.pooled;
  into.checkouts.taken += s.checkouts.taken;
  into.checkouts.returned += s.checkouts.returned;
  into.checkouts.open += s.checkouts.open;
  into.checkouts.leaked += s.checkouts.leaked;
}

std::string describe_processes(const std::vector<Report>& reports) {
  // Listing a thousand pids helps nobody; the first few identify the run.
  constexpr std::size_t kShown = 8;
  std::string text = std::to_string(reports.size()) + " processes (pids ";
  for (std::size_t i = 0; i < reports.size() && i < kShown; ++i) {
    if (i) text += ", ";
    text += std::to_string(reports[i].pid);
  }
  if (reports.size() > kShown) text += ", ...";
  return text + ")";
}

// The pid that stands for the whole set in the banner: the one process whose
// parent is not among them (the root of the tree that reported), else the
// parent all of them share (siblings under a shell that opened nothing), else 0.
std::int64_t tree_root(const std::vector<Report>& reports) {
  std::set<std::int64_t> pids;
  for (const Report& r : reports) pids.insert(r.pid);
  std::vector<const Report*> roots;
  for (const Report& r : reports)
    if (!pids.count(r.ppid)) roots.push_back(&r);
  if (roots.size() == 1) return roots.front()->pid;
  for (const Report* r : roots)
    if (r->ppid != roots.front()->ppid) return 0;
  return roots.empty() ? 0 : roots.front()->ppid;
}

}  // namespace

Report merge_reports(std::vector<Report> reports, const MergeOptions& options) {
  std::stable_sort(reports.begin(), reports.end(),
                   [](const Report& a, const Report& b) { return a.pid < b.pid; });
  Report merged;
  merged.version = CONNLEAK_VERSION;
  if (reports.size() == 1) {
    merged.pid = reports[0].pid;
    merged.ppid = reports[0].ppid;
    merged.argv = reports[0].argv;
  } else if (reports.size() > 1) {
    merged.argv = {describe_processes(reports)};
    merged.pid = tree_root(reports);
  }
  if (options.pid) merged.pid = *options.pid;
  if (options.ppid) merged.ppid = *options.ppid;
  if (options.argv) merged.argv = *options.argv;

  bool any_exit = false;
  bool all_killed = !reports.empty();
  Named<Trigger> dump_trigger;  // the common dump trigger; none yet while its name is ""
  bool versions_agree = true;
  for (const Report& r : reports) {
    if (r.version != reports.front().version) versions_agree = false;
    if (r.trigger != Trigger::kKilled) all_killed = false;
    // A killed process's journal lists what it held at death: leaks, like an exit report's.
    if (r.trigger == Trigger::kExit || r.trigger == Trigger::kKilled)
      any_exit = true;
    else if (dump_trigger.name().empty())
      dump_trigger = r.trigger;
    else if (dump_trigger != r.trigger)
      dump_trigger = Trigger::kRequest;
    merged.generated_at =
        std::max(merged.generated_at, r.generated_at);  // ISO 8601 UTC sorts as text
  }
  // Keep the producers' version when they agree, so merging is not a rewrite.
  if (!reports.empty() && versions_agree && !reports.front().version.empty())
    merged.version = reports.front().version;
  merged.trigger = all_killed                    ? Named<Trigger>(Trigger::kKilled)
                   : any_exit || reports.empty() ? Named<Trigger>(Trigger::kExit)
                                                 : dump_trigger;

  for (Report& r : reports) {
    add(merged.summary, r.summary);
    for (const std::string& n : r.notes) merged.notes.push_back(n);
    for (const SuppressionUse& u : r.suppressions_used) {
      auto same = std::find_if(merged.suppressions_used.begin(), merged.suppressions_used.end(),
                               [&](const SuppressionUse& m) { return m.pattern == u.pattern; });
      if (same == merged.suppressions_used.end())
        merged.suppressions_used.push_back(u);
      else
        same->hits += u.hits;
    }
    for (Connection& c : r.connections) {
      if (!c.pid) c.pid = r.pid;
      merged.connections.push_back(std::move(c));
    }
    // Pool and checkout ids are per process: the pid tells them apart.
    for (PoolInfo& p : r.pools) {
      if (!p.pid) p.pid = r.pid;
      merged.pools.push_back(std::move(p));
    }
    for (Checkout& c : r.checkouts) {
      if (!c.pid) c.pid = r.pid;
      merged.checkouts.push_back(std::move(c));
    }
  }
  return merged;
}

}  // namespace connleak
