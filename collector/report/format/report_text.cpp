#include "collector/report/format/report_text.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <unordered_map>

#include "collector/activity/activity.h"
#include "collector/report/report_checkouts.h"
#include "collector/report/report_findings.h"
#include "collector/report/stack_text.h"
#include "collector/util/printable.h"
#include "collector/util/text_util.h"

namespace connleak {

namespace {

// Every string of a report is the host's (or a report file's) bytes: a
// function name holding "\n\nSUMMARY: connleak: no leaks" would forge a line,
// an OSC sequence would retitle the terminal. Text output shows them escaped.
void make_printable(std::string& s) {
  s = printable(s);
}
void make_printable(std::optional<std::string>& s) {
  if (s) make_printable(*s);
}
// Only an unknown value (read from a report) carries text of its own.
template <typename E>
void make_printable(Named<E>& n) {
  if (n.known()) return;
  std::string text = n.str();
  make_printable(text);
  n = Named<E>(text);
}
void make_printable(FrameList& frames) {
  for (Frame& f : frames.edit()) {  // a copy of this connection's own
    make_printable(f.module);
    make_printable(f.function);
    make_printable(f.file);
  }
}
void make_printable(Stacks& s) {
  make_printable(s.native);
  if (s.script) make_printable(*s.script);
}
void make_printable(std::optional<Stacks>& s) {
  if (s) make_printable(*s);
}
Connection printable_copy(Connection c) {
  for (std::string* f : {&c.handle, &c.target, &c.state, &c.opened_at, &c.client_module})
    make_printable(*f);
  make_printable(c.library);
  make_printable(c.status);
  for (std::optional<std::string>* f :
       {&c.closed_at, &c.closed_again_at, &c.protocol, &c.closed_by})
    make_printable(*f);
  for (AlertInfo& a : c.alerts) make_printable(a.kind);
  make_printable(c.acquired);
  make_printable(c.init_stack);
  make_printable(c.closed_from);
  make_printable(c.closed_again_from);
  if (c.transaction) {
    make_printable(c.transaction->state);
    make_printable(c.transaction->note);
    make_printable(c.transaction->began);
  }
  return c;
}
// Everything but the connections: render_text escapes only the connections it
// shows (a few per site), not the 10,000 of a large exit report.
Report printable_head(const Report& r) {
  Report out;
  static_cast<ReportHead&>(out) = r;
  for (std::string* f : {&out.tool, &out.version, &out.generated_at}) make_printable(*f);
  make_printable(out.trigger);
  for (std::string& a : out.argv) make_printable(a);
  for (std::string& n : out.notes) make_printable(n);
  for (SuppressionUse& u : out.suppressions_used) {
    make_printable(u.pattern);
    make_printable(u.origin);
  }
  return out;
}

std::string seconds(double s) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

}  // namespace

namespace {

std::string describe(const Connection& c) {
  std::ostringstream d;
  d << c.library;
  if (c.protocol) d << '/' << *c.protocol;
  d << ' ' << c.handle;
  if (!c.target.empty()) d << ' ' << c.target;
  d << " (id " << c.id << ", thread " << c.thread << ", open " << seconds(c.age_seconds);
  if (c.state == "failed")
    d << ", connect failed and the handle was never closed";
  else if (c.state == "initialized")
    d << ", initialized, never connected";
  else if (c.state != "unknown" && !c.state.empty())
    d << ", " << c.state;
  if (c.server_id) d << ", server id " << *c.server_id;
  if (c.transaction &&
      (c.transaction->state == "in_transaction" || c.transaction->state == "in_error"))
    d << ", " << c.transaction->state << " for " << seconds(c.transaction->seconds);
  if (c.transaction && c.transaction->note)
    d << ", transaction state unknown (" << *c.transaction->note << ")";
  for (const AlertInfo& a : c.alerts)
    if (a.kind != AlertKind::kDoubleClose)
      d << ", flagged " << a.kind << " after " << seconds(a.after_seconds);
  if (c.resets) d << ", " << c.resets << " reset(s)";
  if (c.context) d << ", " << describe_context(*c.context);
  if (c.closed_by == "interpreter_exit")
    d << ", never closed by the program: closed by the Python interpreter at exit";
  if (c.closed_by == "runtime_exit")
    d << ", never closed by the program: closed by the runtime (Perl, PHP, Ruby) while it shut "
         "down";
  if (c.closed_by == "garbage_collector")
    d << ", never closed by the program: dropped, then closed by a finalizer (garbage collector)";
  d << ')';
  // What the connection last did, on its own line under the connection.
  if (c.statements && *c.statements > 0)
    d << "\n    "
      << activity::describe_activity(*c.statements, c.last_statement.value_or(""),
                                     c.idle_seconds.value_or(0), c.busy.value_or(false));
  return d.str();
}

std::string program(const Report& r) {
  std::string p;
  for (const std::string& a : r.argv) {
    if (!p.empty()) p += ' ';
    p += a;
  }
  return p.empty() ? std::string("pid ") + std::to_string(r.pid) : p;
}

}  // namespace

std::string describe_connection(const Connection& connection) {
  return describe(printable_copy(connection));
}

std::string site_key(const Stacks& stacks) {
  std::string key;
  auto add = [&](const std::vector<Frame>& frames) {
    for (const Frame& f : frames) {
      key += f.function.value_or("?");
      key += '|';
      key += f.file.value_or("?");
      key += ':';
      key += f.line ? std::to_string(*f.line) : "?";
      key += ';';
    }
    key += '#';
  };
  if (stacks.script) add(*stacks.script);
  add(stacks.native);
  return key;
}

std::string render_alert(AlertKind kind, double threshold_seconds,
                         const std::vector<Connection>& raw_conns, std::size_t total) {
  if (raw_conns.empty()) return "";
  std::vector<Connection> conns;
  for (const Connection& c : raw_conns) conns.push_back(printable_copy(c));
  std::ostringstream out;
  const Connection& first = conns.front();
  if (kind == AlertKind::kIdleInTransaction) {
    out << "connleak: WARNING: " << total << " connection(s) inside one transaction for more than "
        << seconds(threshold_seconds) << " (txn_threshold); the transaction began at:\n";
    if (first.transaction && first.transaction->began)
      out << format_stacks(*first.transaction->began, "    ");
    else
      out << "    <no stack captured>\n";
    out << "  the connection was opened at:\n";
  } else if (kind == AlertKind::kIdle) {
    out << "connleak: WARNING: " << total
        << " connection(s) inside a transaction sent nothing for more than "
        << seconds(threshold_seconds) << " (idle_threshold), opened at:\n";
  } else {
    out << "connleak: WARNING: " << total << " connection(s) open for more than "
        << seconds(threshold_seconds) << " (threshold), opened at:\n";
  }
  out << format_stacks(first.acquired, "    ");
  for (const Connection& c : conns) {
    out << "  " << describe(c) << '\n';
    // A member whose own stacks differ from the block's: shown, never hidden
    // behind the first connection's.
    if (&c == &first) continue;
    if (site_key(c.acquired) != site_key(first.acquired)) {
      out << "    this connection was opened at:\n";
      out << format_stacks(c.acquired, "      ");
    }
    if (kind == AlertKind::kIdleInTransaction && c.transaction && c.transaction->began &&
        !(first.transaction && first.transaction->began &&
          site_key(*c.transaction->began) == site_key(*first.transaction->began))) {
      out << "    its transaction began at:\n";
      out << format_stacks(*c.transaction->began, "      ");
    }
  }
  if (total > conns.size())
    out << "  ... " << total - conns.size() << " more connection(s) from this site\n";
  return out.str();
}

std::string render_text(const Report& raw, const TextOptions& options) {
  // Escaping keeps a known status, state or trigger as it is, so the raw
  // connections are grouped and counted as their escaped copies would be;
  // a connection is escaped (printable_copy) only when it is printed.
  const Report r = printable_head(raw);
  const bool killed = r.trigger == Trigger::kKilled;
  const bool dump = r.trigger != Trigger::kExit && !killed;
  const ConnStatus wanted_status = dump ? ConnStatus::kOpen : ConnStatus::kLeaked;

  // Group the open/leaked connections by acquisition site, largest group first,
  // then by the first connection's id so output order is deterministic. The
  // key is the escaped stack's, printable(site_key(raw)) (escaping works byte
  // sequence by sequence and site_key's separators are ASCII), computed once
  // per distinct raw key: 10,000 leaks from 100 sites escape 100 keys.
  // Connections sharing their frames (one FrameList, as build_report makes
  // them) share a site without building its key.
  std::map<std::string, std::vector<const Connection*>> sites;
  std::unordered_map<std::string, std::vector<const Connection*>*> site_of_raw_key;
  static const char kNoScript = 0;
  std::map<std::pair<const void*, const void*>, std::vector<const Connection*>*> site_of_frames;
  std::vector<const Connection*> misuse;
  for (const Connection& c : raw.connections) {
    if (c.status == wanted_status) {
      const Stacks& a = c.acquired;
      auto [known, first_seen] = site_of_frames.try_emplace(
          {a.native.identity(), a.script ? a.script->identity() : &kNoScript}, nullptr);
      if (first_seen) {
        auto [it, inserted] = site_of_raw_key.try_emplace(site_key(a));
        if (inserted) it->second = &sites[printable(it->first)];
        known->second = it->second;
      }
      known->second->push_back(&c);
    }
    if (!c.alerts.empty() && c.status == ConnStatus::kClosed) misuse.push_back(&c);
  }
  std::vector<std::vector<const Connection*>> groups;
  // A pool_exhausted snapshot is about that pool's checkouts (the JSON keeps
  // every open connection).
  if (r.trigger == Trigger::kPoolExhausted) sites.clear();
  for (auto& [key, conns] : sites) groups.push_back(std::move(conns));
  std::sort(groups.begin(), groups.end(), [](const auto& a, const auto& b) {
    if (a.size() != b.size()) return a.size() > b.size();
    return a.front()->id < b.front()->id;
  });

  std::size_t listed = 0;
  for (const auto& g : groups) listed += g.size();
  const Summary& s = r.summary;
  std::ostringstream out;

  // Pool checkouts (extension): leaked/reclaimed ones are problems; idle
  // pooled connections at exit only get a low-severity line.
  // The checkout part reads the connections' pools, ids and statuses only.
  const std::string checkout_text = render_checkouts_text(raw);
  const std::size_t checkout_issues = checkout_problems(raw);
  if (groups.empty() && misuse.empty() && checkout_issues == 0) {
    if (killed) {
      // Never an all-clear: the process died, and what it held is all we know.
      out << "connleak: pid " << r.pid << " (" << program(r)
          << ") died without its exit report; its journal shows no open connection (" << s.opened
          << " opened, " << s.closed << " closed)\n";
      for (const std::string& n : r.notes) out << "connleak: note: " << n << '\n';
      return out.str();
    }
    if (!dump && !options.clean_line && checkout_text.empty()) return "";
    if (!checkout_text.empty()) out << checkout_text.substr(1);
    if (!dump && !options.clean_line) return out.str();
    if (dump) {
      out << "connleak: dump (" << r.trigger << ") of pid " << r.pid << ": no open connections; "
          << s.opened << " opened, " << s.closed << " closed\n";
    } else {
      out << "connleak: no leaks: " << s.opened << " connection(s) opened, " << s.closed
          << " closed (" << program(r) << ")\n";
    }
    out << options.before_summary;
    return out.str();
  }

  out << "=================================================================\n";
  if (r.pid) out << "==" << r.pid << "==";  // a merge of several processes has no single pid
  if (r.trigger == Trigger::kPoolExhausted) {
    out << "connleak: snapshot (pool_exhausted): "
        << (r.snapshot_pool ? pool_label(r, *r.snapshot_pool) : "a pool") << " ran dry";
    if (r.waited_seconds) out << " (the caller waited " << seconds(*r.waited_seconds) << ")";
    out << "; " << checkout_issues << " checkout(s) held in " << program(r) << "\n";
  } else if (r.trigger == Trigger::kServerRefused) {
    out << "connleak: snapshot (server_refused): the server refused a new connection";
    if (r.refusal) out << " (" << *r.refusal << ")";
    out << "; " << listed << " open connection(s) in " << program(r) << "\n";
  } else if (dump) {
    out << "connleak: dump (" << r.trigger << "): " << listed << " open connection(s) in "
        << program(r) << "\n";
  } else if (killed) {
    out << "connleak: " << program(r)
        << " died without its exit report (killed); its journal shows connection leaks\n";
  } else {
    out << "connleak: "
        << (groups.empty() && checkout_issues == 0 ? "flagged connections"
                                                   : "detected connection leaks")
        << " in " << program(r) << "\n";
  }
  for (const auto& g : groups) {
    // Initialized but never connected: owns client memory, holds no server
    // session; reported at a lower severity.
    bool only_initialized = std::all_of(
        g.begin(), g.end(), [](const Connection* c) { return c->state == "initialized"; });
    out << '\n' << "connleak: " << g.size();
    if (only_initialized)
      out << " handle(s) initialized but never connected (low severity), initialized from:\n";
    else
      out << " connection(s) " << (dump ? "open" : "never closed") << ", opened from:\n";
    Stacks site = g.front()->acquired;
    make_printable(site);
    out << format_stacks(site, "    ");
    std::size_t shown = std::min(g.size(), options.max_handles);
    for (std::size_t i = 0; i < shown; ++i) {
      // Its line and the stacks below it; the site's stack is the group's.
      Connection shown_one = *g[i];
      shown_one.acquired = {};
      shown_one.closed_from.reset();
      shown_one.closed_again_from.reset();
      const Connection c = printable_copy(std::move(shown_one));
      out << "  " << describe(c) << '\n';
      // The group shares its opening site, not its transactions: each open
      // transaction's own start is shown.
      if (c.init_stack) {
        out << "    its handle was initialized (mysql_init) at:\n";
        out << format_stacks(*c.init_stack, "      ");
      }
      if (c.transaction && c.transaction->began &&
          (c.transaction->state == "in_transaction" || c.transaction->state == "in_error")) {
        out << "    its transaction began at:\n";
        out << format_stacks(*c.transaction->began, "      ");
      }
    }
    if (g.size() > shown) out << "  ... and " << g.size() - shown << " more\n";
  }
  for (const Connection* raw_c : misuse) {
    const Connection printed = printable_copy(*raw_c);
    const Connection* c = &printed;
    out << '\n';
    bool double_close = std::any_of(c->alerts.begin(), c->alerts.end(), [](const AlertInfo& a) {
      return a.kind == AlertKind::kDoubleClose;
    });
    if (double_close) {
      out << "connleak: double close of " << describe(*c) << "\n  opened from:\n";
    } else {
      // " was closed" ends the connection's line, before its activity line.
      std::string line = describe(*c);
      line.insert(std::min(line.find('\n'), line.size()), " was closed");
      out << "connleak: flagged connection " << line << "\n  opened from:\n";
    }
    out << format_stacks(c->acquired, "    ");
    if (c->init_stack) {
      out << "  initialized (mysql_init) at:\n";
      out << format_stacks(*c->init_stack, "    ");
    }
    if (c->closed_from) {
      out << "  " << (double_close ? "first closed from:" : "closed from:") << '\n';
      out << format_stacks(*c->closed_from, "    ");
    }
    if (c->closed_again_from) {
      out << "  closed again from:\n";
      out << format_stacks(*c->closed_again_from, "    ");
    }
  }
  out << checkout_text;
  if (!r.notes.empty()) out << '\n';
  for (const std::string& n : r.notes) out << "connleak: note: " << n << '\n';
  out << '\n' << options.before_summary << "SUMMARY: connleak: ";
  if (dump)
    out << listed << " open connection(s)";
  else
    out << s.leaked << " leaked connection(s)";
  out << " from " << groups.size() << " site(s); " << s.opened << " opened, " << s.closed
      << " closed";
  if (s.double_closes) out << ", " << s.double_closes << " double close(s)";
  if (s.unknown_closes) out << ", " << s.unknown_closes << " close(s) of unknown handles";
  if (s.checkouts.taken) {
    out << "; " << s.checkouts.taken << " checkout(s), " << s.checkouts.leaked << " leaked";
    if (s.pooled) out << ", " << s.pooled << " pooled connection(s)";
  }
  if (!s.complete) out << " (incomplete: some records could not be read in time)";
  out << ".\n";
  return out.str();
}

}  // namespace connleak
