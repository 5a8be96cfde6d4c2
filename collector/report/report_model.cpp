#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <unordered_map>

#include "collector/activity/activity.h"
#include "collector/core/contexts.h"
#include "collector/core/script_frames.h"
#include "collector/policy/redact.h"
#include "collector/report/report_builder.h"
#include "collector/util/text_util.h"

namespace connleak {

namespace {

double seconds_between(std::int64_t from_ns, std::int64_t to_ns) {
  return to_ns > from_ns ? static_cast<double>(to_ns - from_ns) / 1e9 : 0.0;
}

// "--password=X", "--pgpassword X", "-pX": the flag's name (dashes and any
// "=value" left out) when the argument is a flag naming a password, else "".
// "--no-password" (psql -w) names none.
std::string secret_flag_name(const std::string& arg) {
  if (arg.size() < 2 || arg[0] != '-') return "";
  std::size_t start = arg.find_first_not_of('-');
  if (start == std::string::npos || start > 2) return "";
  std::string name = arg.substr(
      start, arg.find('=') == std::string::npos ? std::string::npos : arg.find('=') - start);
  if (name.rfind("no-", 0) == 0 || name.rfind("no_", 0) == 0) return "";
  return names_a_secret(name) ? name : "";
}

std::string redact_arg(const std::string& arg) {
  if (!secret_flag_name(arg).empty()) {
    std::size_t eq = arg.find('=');
    return eq == std::string::npos ? arg : arg.substr(0, eq + 1) + "***";
  }
  // mysql -pSECRET, and any other program's: "-p5432" may be a port (psql), but
  // a password-shaped argument is never printed on a guess.
  if (arg.size() > 2 && arg[0] == '-' && arg[1] == 'p') return "-p***";
  return scrub_value(arg);
}

}  // namespace

ProcessInfo current_process() {
  ProcessInfo p;
  p.pid = getpid();
  p.ppid = getppid();
  std::ifstream in("/proc/self/cmdline", std::ios::binary);
  std::string raw((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::size_t start = 0;
  while (start < raw.size()) {
    std::size_t end = raw.find('\0', start);
    if (end == std::string::npos) end = raw.size();
    p.argv.push_back(raw.substr(start, end - start));
    start = end + 1;
  }
  p.argv = redact_argv(std::move(p.argv));
  return p;
}

std::vector<std::string> redact_argv(std::vector<std::string> argv) {
  bool value_is_secret = false;  // the previous argument was "--password" without "=value"
  for (std::size_t i = 1; i < argv.size(); ++i) {
    std::string& arg = argv[i];
    // "psql --password -h h" prompts: a following flag is not the password.
    if (value_is_secret && !(arg.size() > 1 && arg[0] == '-')) {
      arg = "***";
      value_is_secret = false;
      continue;
    }
    value_is_secret = !secret_flag_name(arg).empty() && arg.find('=') == std::string::npos;
    arg = redact_arg(arg);
  }
  return argv;
}

namespace {}  // namespace

ConnLibrary library_of(Library lib) {
  switch (lib) {
    case Library::kLibpq:
      return ConnLibrary::kLibpq;
    case Library::kMysql:
      return ConnLibrary::kMysql;
    case Library::kSocket:
      return ConnLibrary::kSocket;
  }
  return ConnLibrary::kUnknown;
}

namespace {

// In a host whose interpreter the shim reads (CPython, Ruby...) every stack
// carries a part in that language (possibly empty).
Stacks stacks_of(Symbolizer& symbolizer, StackId id, StackId script_id) {
  Stacks s;
  s.native = symbolizer.resolve_stack(id);
  s.language = script_host();
  if (s.language != ScriptLanguage::kNone) s.script = symbolizer.script_stack(script_id);
  return s;
}

std::optional<ContextInfo> context_info(std::uint32_t id) {
  ContextLabel label;
  if (!id || !ContextTable::instance().label(id, &label)) return std::nullopt;
  ContextInfo info;
  info.test = label.test;
  if (*label.fixture) info.fixture = label.fixture;
  if (*label.scope) info.scope = label.scope;
  return info;
}

void add_alerts(const ConnRecord& rec, Connection& c) {
  if (rec.alerts & kAlertLifetime)
    c.alerts.push_back({AlertKind::kLifetime, rec.lifetime_alert_after()});
  if (rec.alerts & kAlertIdleInTransaction)
    c.alerts.push_back({AlertKind::kIdleInTransaction, rec.txn_alert_after()});
  if (rec.alerts & kAlertIdle) c.alerts.push_back({AlertKind::kIdle, rec.idle_alert_after()});
}

// Statements, the last one (normalized here, on the reporting thread) and
// the idle time: what the connection was doing.
// `now_mono`: the report's time, or the close's for a closed record (idle
// until it was closed).
void add_activity(Connection& c, const LiveConn* live, std::int64_t now_mono) {
  if (!live) return;
  activity::ActivityView view;
  const activity::Activity* a = live_activity_if(*live);
  if (!a || !activity::read_activity(*a, view)) return;
  c.statements = view.statements;
  if (!view.last_statement.empty()) c.last_statement = view.last_statement;
  const double idle = view.last_used_mono ? seconds_between(view.last_used_mono, now_mono) : 0;
  c.idle_seconds = idle < 0 ? 0 : idle;
  Timestamp t = now();
  c.last_used_at = iso8601_utc(t.real_ns - (t.mono_ns - view.last_used_mono));
  if (view.in_flight && !c.closed_at) c.busy = true;  // a closed one runs nothing
}

Connection base_view(const ConnRecord& rec, Symbolizer& symbolizer) {
  Connection c;
  c.id = rec.id;
  c.library = library_of(rec.library());
  const SocketPart* socket = rec.socket();
  c.handle = socket && socket->fd >= 0 ? "fd:" + std::to_string(socket->fd) : hex(rec.handle);
  if (socket && socket->protocol) c.protocol = socket->protocol;
  c.target = rec.target ? rec.target : "";
  c.opened_at = iso8601_utc(rec.opened.real_ns);
  c.thread = rec.thread;
  c.resets = rec.resets;
  c.client_module = rec.client_module ? rec.client_module : "";
  c.acquired = stacks_of(symbolizer, rec.open_stack, rec.py_open_stack);
  if (const MysqlPart* mysql = rec.mysql(); mysql && mysql->init_elsewhere)
    c.init_stack = stacks_of(symbolizer, mysql->init_stack, mysql->py_init_stack);
  if (rec.server_id >= 0) c.server_id = rec.server_id;
  c.context = context_info(rec.context);
  add_alerts(rec, c);
  return c;
}

}  // namespace

Connection open_connection_view(const ConnRecord& rec, bool at_exit, std::int64_t now_mono,
                                Symbolizer& symbolizer, const StateProbe& probe) {
  Connection c = base_view(rec, symbolizer);
  c.status = at_exit ? ConnStatus::kLeaked : ConnStatus::kOpen;
  HandleState hs = probe ? probe(rec) : HandleState{};
  c.state = hs.state;
  if (hs.server_id >= 0) c.server_id = hs.server_id;
  c.age_seconds = seconds_between(rec.opened.mono_ns, now_mono);
  // libpq's state is always known; a MySQL connection's only once a command
  // has reported it (never with MySQL 8's client): otherwise "idle" would be a guess.
  const LiveConn* live = rec.live;
  if (live && (rec.library() == Library::kLibpq ||
               live->txn_known.load(std::memory_order_relaxed) || !hs.txn_note.empty())) {
    TransactionInfo txn;
    auto state = static_cast<TxnState>(live->txn.load(std::memory_order_acquire));
    txn.state = txn_state_name(state);
    if (state == TxnState::kInTransaction || state == TxnState::kInError) {
      txn.seconds = seconds_between(live->txn_since_mono.load(std::memory_order_relaxed), now_mono);
      txn.began = stacks_of(symbolizer, live->txn_stack.load(std::memory_order_relaxed),
                            live->txn_py_stack.load(std::memory_order_relaxed));
    }
    if (!hs.txn_note.empty()) {
      txn.state = "unknown";
      txn.note = hs.txn_note;
    }
    c.transaction = std::move(txn);
  }
  add_activity(c, rec.live, now_mono);
  return c;
}

void drop_initialized_only(Report& report) {
  auto& conns = report.connections;
  auto keep = std::remove_if(conns.begin(), conns.end(), [&](const Connection& c) {
    if (c.state != "initialized") return false;
    if (c.status == ConnStatus::kLeaked && report.summary.leaked) --report.summary.leaked;
    if (report.summary.open) --report.summary.open;
    return true;
  });
  conns.erase(keep, conns.end());
}

Report build_report(const Snapshot& snap, const Named<Trigger>& trigger, const ProcessInfo& process,
                    Symbolizer& symbolizer, const StateProbe& probe,
                    const CheckoutSnapshot* checkouts) {
  Report r;
  r.version = CONNLEAK_VERSION;
  r.pid = process.pid;
  r.ppid = process.ppid;
  r.argv = process.argv;
  r.trigger = trigger;
  Timestamp t = now();
  r.generated_at = iso8601_utc(t.real_ns);
  const bool at_exit = r.trigger == Trigger::kExit;

  std::vector<const ConnRecord*> open;
  for (const ConnRecord& rec : snap.open) {
    if (rec.inherited) {
      ++r.summary.inherited;
      if (at_exit) continue;  // the parent owns it and reports it
    }
    open.push_back(&rec);
  }
  std::sort(open.begin(), open.end(), [](auto* a, auto* b) { return a->id < b->id; });
  for (const ConnRecord* rec : open)
    r.connections.push_back(open_connection_view(*rec, at_exit, t.mono_ns, symbolizer, probe));
  auto closed_view = [&](const ClosedRecord& closed) {
    Connection c = base_view(closed.record, symbolizer);
    c.status = ConnStatus::kClosed;
    c.state = "closed";
    c.closed_at = iso8601_utc(closed.closed.real_ns);
    c.age_seconds = seconds_between(closed.record.opened.mono_ns, closed.closed.mono_ns);
    c.closed_from = stacks_of(symbolizer, closed.close_stack, closed.py_close_stack);
    add_activity(c, closed.activity, closed.closed.mono_ns);
    if (closed.record.txn_alert_stack) {
      TransactionInfo txn;
      txn.state = "closed";
      txn.began =
          stacks_of(symbolizer, closed.record.txn_alert_stack, closed.record.txn_alert_py_stack);
      c.transaction = std::move(txn);
    }
    return c;
  };
  // Closed by the interpreter at exit: the program never closed them.
  for (const ClosedRecord& closed : snap.finalized) {
    Connection c = closed_view(closed);
    c.status = at_exit ? ConnStatus::kLeaked : ConnStatus::kClosed;
    c.closed_by = closed.by_finalizer ? "garbage_collector"
                  : closed.by_runtime ? "runtime_exit"
                                      : "interpreter_exit";
    r.connections.push_back(std::move(c));
  }
  for (const ClosedRecord& closed : snap.flagged) {
    Connection c = closed_view(closed);
    if (closed.double_close) {
      c.alerts.push_back({AlertKind::kDoubleClose, seconds_between(closed.record.opened.mono_ns,
                                                                   closed.closed_again.mono_ns)});
      c.closed_again_from =
          stacks_of(symbolizer, closed.close_again_stack, closed.py_close_again_stack);
      c.closed_again_at = iso8601_utc(closed.closed_again.real_ns);
    }
    r.connections.push_back(std::move(c));
  }

  Summary& s = r.summary;
  s.opened = snap.counters.opened;
  s.closed = snap.counters.closed;
  s.resets = snap.counters.resets;
  s.double_closes = snap.counters.double_closes;
  s.unknown_closes = snap.counters.unknown_closes;
  s.open = snap.open.size();
  s.ignored = snap.ignored;
  s.complete = snap.complete;
  if (checkouts) add_checkouts(r, snap, *checkouts, t.mono_ns, symbolizer);
  for (const Connection& c : r.connections) {
    if (c.status == ConnStatus::kLeaked) ++s.leaked;
    if (!c.alerts.empty()) ++s.flagged;
  }
  return r;
}

Checkout checkout_view(const CheckoutRecord& rec, Symbolizer& symbolizer) {
  Checkout c;
  c.id = rec.id;
  c.pool = rec.pool;
  if (rec.connection) c.connection = rec.connection;
  c.checked_out_at = iso8601_utc(rec.checked_out.real_ns);
  c.thread = rec.thread;
  if (rec.task) c.task = rec.task;
  c.acquired = stacks_of(symbolizer, rec.stack, rec.py_stack);
  c.context = context_info(rec.context);
  if (rec.alerted) c.alerts.push_back({AlertKind::kCheckoutHeld, rec.alert_after});
  if (rec.in_transaction_at_alert >= 0) c.in_transaction = rec.in_transaction_at_alert == 1;
  if (rec.holder_py_stack) {
    Stacks holder;
    holder.script = symbolizer.script_stack(rec.holder_py_stack);  // asyncio tasks: Python only
    holder.language = ScriptLanguage::kPython;
    c.holder_now = std::move(holder);
  }
  return c;
}

PoolInfo pool_view(const PoolRecord& p) {
  PoolInfo info;
  info.id = p.id;
  info.kind = p.kind;
  info.name = p.name;
  info.target = p.target;
  info.max_size = p.max_size;
  return info;
}

void add_checkouts(Report& r, const Snapshot& snap, const CheckoutSnapshot& co,
                   std::int64_t now_mono, Symbolizer& symbolizer) {
  const bool at_exit = r.trigger == Trigger::kExit;
  std::unordered_map<std::uint64_t, const ConnRecord*> by_id;
  for (const ConnRecord& rec : snap.open) by_id[rec.id] = &rec;
  // A pool never closed by a Python program: CPython closes its idle
  // connections (asyncpg's transports, PyMySQL's sockets) while tearing down.
  std::unordered_map<std::uint64_t, const ConnRecord*> finalized;
  for (const ClosedRecord& rec : snap.finalized)
    if (rec.by_interpreter && rec.record.pool) finalized[rec.record.id] = &rec.record;
  std::unordered_map<std::uint64_t, std::size_t> pool_index;
  for (const PoolRecord& p : co.pools) {
    pool_index[p.id] = r.pools.size();
    r.pools.push_back(pool_view(p));
  }
  // Adopted connections: idle in their pool at exit is the pool's normal
  // state (an engine never disposed), not a leak of the program's.
  for (Connection& c : r.connections) {
    const auto& from = c.closed_at ? finalized : by_id;
    auto it = from.find(c.id);
    if (it == from.end() || it->second->pool == 0) continue;
    c.pool = it->second->pool;
    if (at_exit && c.status == ConnStatus::kLeaked) c.status = ConnStatus::kPooled;
    ++r.summary.pooled;
    if (auto p = pool_index.find(*c.pool); p != pool_index.end()) ++r.pools[p->second].connections;
  }
  auto view = [&](const CheckoutRecord& rec) { return checkout_view(rec, symbolizer); };
  for (const CheckoutRecord& rec : co.open) {
    Checkout c = view(rec);
    c.status = at_exit ? CheckoutStatus::kLeaked : CheckoutStatus::kOpen;
    c.held_seconds = seconds_between(rec.checked_out.mono_ns, now_mono);
    // Now, from the lent connection's transaction state (if it is known).
    if (auto conn = by_id.find(rec.connection);
        rec.connection && conn != by_id.end() && conn->second->live) {
      const LiveConn* live = conn->second->live;
      if (conn->second->library() == Library::kLibpq ||
          live->txn_known.load(std::memory_order_relaxed)) {
        auto state = static_cast<TxnState>(live->txn.load(std::memory_order_acquire));
        c.in_transaction = state == TxnState::kInTransaction || state == TxnState::kInError;
      }
    }
    if (auto p = pool_index.find(rec.pool); p != pool_index.end()) ++r.pools[p->second].checked_out;
    r.checkouts.push_back(std::move(c));
  }
  for (const CheckoutRecord& rec : co.ended) {
    Checkout c = view(rec);
    c.status =
        rec.end == CheckoutEnd::kReclaimed ? CheckoutStatus::kReclaimed : CheckoutStatus::kReturned;
    c.returned_at = iso8601_utc(rec.returned.real_ns);
    c.held_seconds = seconds_between(rec.checked_out.mono_ns, rec.returned.mono_ns);
    r.checkouts.push_back(std::move(c));
  }
  std::sort(r.checkouts.begin(), r.checkouts.end(),
            [](const Checkout& a, const Checkout& b) { return a.id < b.id; });
  CheckoutSummary& s = r.summary.checkouts;
  s.taken = co.counters.taken;
  s.returned = co.counters.returned;
  s.open = co.open.size();
  s.leaked = co.counters.reclaimed + (at_exit ? co.open.size() : 0);
  if (!co.complete) r.summary.complete = false;
}

}  // namespace connleak
