#include "collector/report/report_checkouts.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "collector/report/format/report_text.h"
#include "collector/util/printable.h"

namespace connleak {

namespace {

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

const PoolInfo* find_pool(const Report& report, std::uint64_t id, std::optional<std::int64_t> pid) {
  for (const PoolInfo& p : report.pools)
    if (p.id == id && (!pid || !p.pid || *p.pid == *pid)) return &p;
  return nullptr;
}

void render_holder(std::ostringstream& out, const Checkout& c) {
  if (c.holder_now && c.holder_now->script && !c.holder_now->script->empty()) {
    if (c.task)
      out << "  the holder, asyncio task " << *c.task << ", is doing now:\n";
    else
      out << "  the holder is doing now:\n";
    out << format_stacks(*c.holder_now, "    ");
  } else if (c.task) {
    out << "  the holder is asyncio task " << *c.task
        << ": its suspended stack is not available (the checkout stack above is where it took the "
           "connection)\n";
  } else if (c.holder_note) {
    out << "  the holder's current stack is not available (" << *c.holder_note << ")\n";
  }
}

// Checkouts of one status grouped by (pool, checkout stack), largest group first.
std::vector<std::vector<const Checkout*>> group_checkouts(const Report& report,
                                                          CheckoutStatus status) {
  std::map<std::string, std::vector<const Checkout*>> sites;
  for (const Checkout& c : report.checkouts)
    if (c.status == status)
      sites[std::to_string(c.pool) + "/" + site_key(c.acquired)].push_back(&c);
  std::vector<std::vector<const Checkout*>> groups;
  for (auto& [key, members] : sites) groups.push_back(std::move(members));
  std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
    if (a.size() != b.size()) return a.size() > b.size();
    return a.front()->id < b.front()->id;
  });
  return groups;
}

}  // namespace

std::string pool_label(const Report& report, std::uint64_t pool_id,
                       std::optional<std::int64_t> pid) {
  const PoolInfo* p = find_pool(report, pool_id, pid);
  if (!p) return "pool " + std::to_string(pool_id);
  std::string label = p->kind;
  if (!p->name.empty()) label += " " + p->name;
  if (!p->target.empty() && p->name.find(p->target) == std::string::npos)
    label += " (" + p->target + ")";
  return label;
}

std::string describe_context(const ContextInfo& c) {
  std::string out;
  if (c.fixture) {
    out = "fixture " + printable(*c.fixture);
    if (c.scope) out += " (" + printable(*c.scope) + ")";
    out += " of ";
  } else {
    out = "test ";
  }
  return out + printable(c.test);
}

std::string describe_checkout(const Report& report, const Checkout& c) {
  std::ostringstream d;
  d << "checkout " << c.id << " of " << pool_label(report, c.pool, c.pid) << " (";
  if (c.connection)
    d << "connection " << *c.connection;
  else
    d << "connection not linked";
  d << ", thread " << c.thread;
  if (c.task) d << ", task " << *c.task;
  d << ", held " << seconds(c.held_seconds);
  if (c.in_transaction) d << (*c.in_transaction ? ", in transaction" : ", not in a transaction");
  for (const AlertInfo& a : c.alerts)
    if (a.kind == AlertKind::kCheckoutHeld)
      d << ", flagged checkout_held after " << seconds(a.after_seconds);
  if (c.returned_at && c.status == CheckoutStatus::kReturned) d << ", returned";
  if (c.pid) d << ", pid " << *c.pid;
  if (c.context) d << ", " << describe_context(*c.context);
  d << ')';
  return d.str();
}

std::size_t checkout_problems(const Report& report) {
  const bool dump = report.trigger != Trigger::kExit;
  return static_cast<std::size_t>(
      std::count_if(report.checkouts.begin(), report.checkouts.end(), [&](const Checkout& c) {
        return c.status == CheckoutStatus::kLeaked || c.status == CheckoutStatus::kReclaimed ||
               (dump && c.status == CheckoutStatus::kOpen);
      }));
}

std::string render_checkouts_text(const Report& report) {
  const bool dump = report.trigger != Trigger::kExit;
  std::ostringstream out;
  struct Section {
    CheckoutStatus status;
    const char* heading;
  };
  const Section sections[] = {
      {CheckoutStatus::kLeaked, "checkout(s) never returned to their pool, checked out from:"},
      {CheckoutStatus::kReclaimed,
       "checkout(s) never returned: the garbage collector reclaimed the connection while it was "
       "checked out, checked out from:"},
      {CheckoutStatus::kOpen, "checkout(s) held now, checked out from:"},
  };
  for (const Section& section : sections) {
    if (!dump && section.status == CheckoutStatus::kOpen) continue;
    for (const auto& g : group_checkouts(report, section.status)) {
      out << "\nconnleak: " << g.size() << ' ' << section.heading << '\n';
      out << format_stacks(g.front()->acquired, "    ");
      std::size_t shown = std::min<std::size_t>(g.size(), 5);
      for (std::size_t i = 0; i < shown; ++i) {
        out << "  " << describe_checkout(report, *g[i]) << '\n';
        // Each holder's own stack: the group shares the checkout stack only.
        render_holder(out, *g[i]);
      }
      if (g.size() > shown) out << "  ... and " << g.size() - shown << " more\n";
    }
  }
  if (!dump) {
    // Pools whose idle connections were still open at exit: an engine never
    // disposed. Normal for a service; said once per pool, at low severity.
    std::map<std::pair<std::int64_t, std::uint64_t>, std::size_t> idle;
    std::map<std::pair<std::int64_t, std::uint64_t>, bool> held;
    for (const Checkout& c : report.checkouts)
      if (c.status == CheckoutStatus::kLeaked && c.connection)
        held[{c.pid.value_or(0), *c.connection}] = true;
    for (const Connection& c : report.connections)
      if (c.status == ConnStatus::kPooled && c.pool && !held.count({c.pid.value_or(0), c.id}))
        ++idle[{c.pid.value_or(0), *c.pool}];
    for (const auto& [key, n] : idle)
      out << "\nconnleak: pool not disposed: " << n << " idle connection(s) in "
          << pool_label(report, key.second,
                        key.first ? std::optional<std::int64_t>(key.first) : std::nullopt)
          << " (low severity: open at exit, not leaked)\n";
  }
  return out.str();
}

std::string render_checkout_alert(const Report& report, const std::vector<Checkout>& group,
                                  double threshold, std::size_t total) {
  if (group.empty()) return "";
  std::ostringstream out;
  out << "connleak: WARNING: " << total << " checkout(s) held for more than " << seconds(threshold)
      << " (checkout_threshold), checked out from:\n";
  out << format_stacks(group.front().acquired, "    ");
  for (const Checkout& c : group) {
    out << "  " << describe_checkout(report, c) << '\n';
    render_holder(out, c);
  }
  if (total > group.size())
    out << "  ... " << total - group.size() << " more checkout(s) from this site\n";
  return out.str();
}

}  // namespace connleak
