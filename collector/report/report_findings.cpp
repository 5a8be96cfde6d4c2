#include "collector/report/report_findings.h"

#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "collector/report/format/report_text.h"  // site_key
#include "collector/report/stack_text.h"
#include "collector/util/text_util.h"

namespace connleak {

namespace {

const std::vector<Rule> kRules = {
    {"connleak/leaked-connection", "LeakedConnection", "error", "Database connection never closed",
     "A connection opened here was still open when its process exited. Close it on every path "
     "(a finally block, a context manager, RAII) or return it to its pool."},
    {"connleak/double-close", "DoubleClose", "error", "Database connection closed twice",
     "The same handle was closed twice; the second close is a use after free in the client "
     "library. connleak blocked it; the stacks show where it was first closed and closed again."},
    {"connleak/long-lived-connection", "LongLivedConnection", "warning",
     "Database connection open longer than the threshold",
     "A connection stayed open longer than `threshold`. If it is meant to live long, raise the "
     "threshold or suppress the site; otherwise it is probably a slow leak."},
    {"connleak/idle-in-transaction", "IdleInTransaction", "warning",
     "Transaction open longer than the threshold",
     "A connection stayed inside one open transaction longer than `txn_threshold`: it holds locks "
     "and snapshots on the server. Commit or roll back promptly."},
    {"connleak/connection-alert", "ConnectionAlert", "warning", "Connection flagged by connleak",
     "connleak flagged this connection; the message names the alert kind."},
    {"connleak/leaked-checkout", "LeakedCheckout", "error",
     "Pooled connection never returned to its pool",
     "A connection checked out of a pool here was never given back (or the garbage collector "
     "reclaimed it while it was checked out). Release it on every path: a context manager, "
     "`async with pool.acquire()`, Session.close()."},
    {"connleak/checkout-held", "CheckoutHeld", "warning",
     "Pooled connection held longer than the threshold",
     "A checkout stayed out of its pool longer than `checkout_threshold`, starving other requests. "
     "Return the connection before slow work (file copies, remote calls)."},
};

const Frame* pick(const std::vector<Frame>& frames, bool user_only) {
  for (const Frame& f : frames) {
    if (!f.file) continue;
    if (user_only && is_library_frame(f)) continue;
    return &f;
  }
  return nullptr;
}

}  // namespace

const std::vector<Rule>& all_rules() {
  return kRules;
}

const Rule& rule_for(std::string_view kind) {
  if (kind == "leak") return kRules[0];
  if (kind == "double_close") return kRules[1];
  if (kind == "lifetime") return kRules[2];
  if (kind == "idle_in_transaction") return kRules[3];
  if (kind == "checkout_leak") return kRules[5];
  if (kind == "checkout_held") return kRules[6];
  return kRules[4];
}

std::vector<Finding> collect_findings(const Report& report) {
  // Key: kind + site, so the same site can carry a leak and, separately, a double close.
  std::map<std::string, Finding> groups;
  for (const Connection& c : report.connections) {
    std::string kind;
    if (c.status == ConnStatus::kLeaked)
      kind = "leak";
    else if (!c.alerts.empty())
      kind = c.alerts.front().kind.str();
    else
      continue;
    std::string site = site_key(c.acquired);
    Finding& f = groups[kind + '\n' + site];
    if (f.connections.empty()) {
      f.kind = kind;
      f.rule = &rule_for(kind);
      f.site_key = site;
    }
    f.connections.push_back(&c);
  }
  // Checkouts: leaked or reclaimed ones, then flagged ones, grouped by site.
  std::map<std::string, std::vector<Connection>> checkout_groups;
  for (const Checkout& c : report.checkouts) {
    std::string kind;
    if (c.status == CheckoutStatus::kLeaked || c.status == CheckoutStatus::kReclaimed)
      kind = "checkout_leak";
    else if (!c.alerts.empty())
      kind = c.alerts.front().kind.str();
    else
      continue;
    Connection v;
    v.id = c.id;
    v.library = ConnLibrary::kCheckout;
    v.handle = "checkout:" + std::to_string(c.id);
    v.pid = c.pid;
    v.alerts = c.alerts;
    v.acquired = c.acquired;
    v.context = c.context;
    for (const PoolInfo& p : report.pools)
      if (p.id == c.pool && (!c.pid || !p.pid || *p.pid == *c.pid))
        v.target = p.kind + (p.name.empty() ? "" : " " + p.name);
    checkout_groups[kind + '\n' + site_key(c.acquired)].push_back(std::move(v));
  }
  std::vector<Finding> out;
  for (auto& [key, f] : groups) out.push_back(std::move(f));
  for (auto& [key, members] : checkout_groups) {
    Finding f;
    f.kind = key.substr(0, key.find('\n'));
    f.rule = &rule_for(f.kind);
    f.site_key = key.substr(key.find('\n') + 1);
    f.owned = std::make_shared<std::vector<Connection>>(std::move(members));
    for (const Connection& c : *f.owned) f.connections.push_back(&c);
    out.push_back(std::move(f));
  }
  std::stable_sort(out.begin(), out.end(), [](const Finding& a, const Finding& b) {
    bool a_leak = a.kind == "leak" || a.kind == "checkout_leak",
         b_leak = b.kind == "leak" || b.kind == "checkout_leak";
    if (a_leak != b_leak) return a_leak;
    if (a.connections.size() != b.connections.size())
      return a.connections.size() > b.connections.size();
    const Connection& x = *a.connections.front();
    const Connection& y = *b.connections.front();
    if (x.pid.value_or(0) != y.pid.value_or(0)) return x.pid.value_or(0) < y.pid.value_or(0);
    return x.id < y.id;
  });
  return out;
}

bool is_system_path(std::string_view path) {
  static constexpr std::string_view kPrefixes[] = {
      "/usr/lib/",     "/usr/lib64/",     "/lib/",       "/lib64/",
      "/usr/include/", "/usr/local/lib/", "/usr/share/", "/usr/libexec/"};
  for (std::string_view p : kPrefixes)
    if (path.substr(0, p.size()) == p) return true;
  // Installed Python packages and the standard library, wherever the
  // interpreter (pyenv, a virtualenv) lives.
  return path.find("/site-packages/") != std::string_view::npos ||
         path.find("/dist-packages/") != std::string_view::npos ||
         path.find("/lib/python3") != std::string_view::npos ||
         // connleak's own pool adapters (python/connleak), installed or in a build tree.
         path.find("/share/connleak/python/") != std::string_view::npos;
}

bool is_library_frame(const Frame& f) {
  return (f.file && is_system_path(*f.file)) || (f.module && is_system_path(*f.module));
}

const Frame* title_frame(const Stacks& stacks) {
  if (const Frame* f = user_frame(stacks)) return f;
  auto named = [](const std::vector<Frame>& frames) -> const Frame* {
    for (const Frame& f : frames)
      if (f.function && !is_library_frame(f)) return &f;
    for (const Frame& f : frames)
      if (f.function) return &f;
    return nullptr;
  };
  if (stacks.script)
    if (const Frame* f = named(*stacks.script)) return f;
  return named(stacks.native);
}

const Frame* user_frame(const Stacks& stacks) {
  if (stacks.script) {
    if (const Frame* f = pick(*stacks.script, true)) return f;
  }
  if (const Frame* f = pick(stacks.native, true)) return f;
  if (stacks.script) {
    if (const Frame* f = pick(*stacks.script, false)) return f;
  }
  return pick(stacks.native, false);
}

std::string frame_title(const Frame* f) {
  if (!f) return "<unknown site>";
  std::string title = f->function.value_or("<unknown>");
  // Appends rather than `" (" + s`: GCC 12 warns falsely (-Wrestrict) on that form.
  if (f->file) {
    title += " (";
    title += *f->file;
    if (f->line) {
      title += ':';
      title += std::to_string(*f->line);
    }
    title += ')';
  } else if (f->module) {
    title += " (";
    title += *f->module;
    title += ')';
  }
  return title;
}

std::string format_closes(const Connection& c, std::string_view indent) {
  std::string out;
  if (c.closed_from) {
    out += std::string(indent) + (c.closed_again_from ? "First closed from:\n" : "Closed from:\n");
    out += format_stacks(*c.closed_from, std::string(indent) + "  ");
  }
  if (c.closed_again_from) {
    out += std::string(indent) + "Closed again from:\n";
    out += format_stacks(*c.closed_again_from, std::string(indent) + "  ");
  }
  return out;
}

std::vector<std::int64_t> finding_pids(const Finding& finding) {
  std::vector<std::int64_t> pids;
  for (const Connection* c : finding.connections)
    if (c->pid) pids.push_back(*c->pid);
  std::sort(pids.begin(), pids.end());
  pids.erase(std::unique(pids.begin(), pids.end()), pids.end());
  return pids;
}

}  // namespace connleak
