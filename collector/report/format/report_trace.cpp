#include "collector/report/format/report_trace.h"

#include <algorithm>
#include <limits>
#include <map>
#include <sstream>

#include "collector/report/format/connection_fields.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_checkouts.h"

namespace connleak {

using nlohmann::ordered_json;

namespace {

// The report's stacks in the text report's notation, one line per array item,
// so the viewer's args pane shows them the way `connleak report` prints them.
ordered_json stack_lines(const Stacks& stacks) {
  ordered_json lines = ordered_json::array();
  std::istringstream in(format_stacks(stacks, ""));
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  return lines;
}

// Chrome's reserved colour names (Perfetto picks its own).
const char* colour(const Named<ConnStatus>& status) {
  if (status == ConnStatus::kLeaked) return "terrible";
  if (status == ConnStatus::kOpen || status == ConnStatus::kPooled) return "good";
  return "generic_work";
}
const char* colour(const Named<CheckoutStatus>& status) {
  if (status == CheckoutStatus::kLeaked || status == CheckoutStatus::kReclaimed) return "terrible";
  if (status == CheckoutStatus::kOpen) return "good";
  return "generic_work";
}

struct Item {
  Span span;
  int order = 0;  // connection, transaction, checkout: parents first at equal times
  std::int64_t pid = 0, tid = 0;
  std::string id;  // for async events
  ordered_json event;
};

class TraceBuilder {
 public:
  explicit TraceBuilder(const Report& report) : report_(report) {}

  void add_connection(const Connection& c) {
    auto span = connection_span(c);
    if (!span) return;
    std::int64_t pid = c.pid.value_or(report_.pid);
    pids_.insert({pid, c.pid ? "" : argv0()});
    std::string key = std::to_string(pid) + "-" + std::to_string(c.id);
    ordered_json args;
    put_connection_identity(args, c);
    if (c.closed_at) args["closed_at"] = *c.closed_at;
    if (c.closed_by) args["closed_by"] = *c.closed_by;
    if (c.server_id) args["server_id"] = *c.server_id;
    if (c.pool) args["pool"] = pool_label(report_, *c.pool, c.pid);
    if (c.statements) args["statements"] = *c.statements;
    if (c.last_statement) args["last_statement"] = *c.last_statement;
    if (c.transaction) args["transaction"] = c.transaction->state;
    args["acquired"] = stack_lines(c.acquired);
    if (c.closed_from) args["closed_from"] = stack_lines(*c.closed_from);
    std::string name = c.library.str() + " #" + std::to_string(c.id) + " " + c.status.str();
    items_.push_back({*span,
                      0,
                      pid,
                      c.thread,
                      "conn-" + key,
                      {{"name", name},
                       {"cat", "connection"},
                       {"cname", colour(c.status)},
                       {"args", std::move(args)}}});

    if (auto txn = transaction_span(c)) {
      ordered_json targs = {{"connection", c.id},
                            {"state", c.transaction->state},
                            {"seconds", c.transaction->seconds}};
      if (c.transaction->began) targs["began"] = stack_lines(*c.transaction->began);
      items_.push_back({*txn,
                        1,
                        pid,
                        c.thread,
                        "txn-" + key,
                        {{"name", "transaction " + c.transaction->state},
                         {"cat", "transaction"},
                         {"cname", "bad"},
                         {"args", std::move(targs)}}});
    }
    for (const AlertInfo& a : c.alerts)
      instant(pid, c.thread, alert_time_us(*span, a), "alert: " + a.kind.str(), "t",
              {{"connection", c.id}, {"kind", a.kind}, {"after_seconds", a.after_seconds}});
  }

  void add_checkout(const Checkout& c) {
    auto span = checkout_span(c);
    if (!span) return;
    std::int64_t pid = c.pid.value_or(report_.pid);
    pids_.insert({pid, c.pid ? "" : argv0()});
    ordered_json args;
    args["id"] = c.id;
    args["pool"] = pool_label(report_, c.pool, c.pid);
    if (c.connection) args["connection"] = *c.connection;
    args["status"] = c.status;
    args["checked_out_at"] = c.checked_out_at;
    if (c.returned_at) args["returned_at"] = *c.returned_at;
    args["held_seconds"] = c.held_seconds;
    if (c.task) args["task"] = *c.task;
    if (c.in_transaction) args["in_transaction"] = *c.in_transaction;
    args["acquired"] = stack_lines(c.acquired);
    if (c.holder_now) args["holder_now"] = stack_lines(*c.holder_now);
    std::string name = "checkout #" + std::to_string(c.id) + " " + c.status.str();
    items_.push_back({*span,
                      2,
                      pid,
                      c.thread,
                      "checkout-" + std::to_string(pid) + "-" + std::to_string(c.id),
                      {{"name", name},
                       {"cat", "checkout"},
                       {"cname", colour(c.status)},
                       {"args", std::move(args)}}});
    for (const AlertInfo& a : c.alerts)
      instant(pid, c.thread, alert_time_us(*span, a), "alert: " + a.kind.str(), "t",
              {{"checkout", c.id}, {"kind", a.kind}, {"after_seconds", a.after_seconds}});
  }

  void add_snapshot(const SnapshotMark& m) {
    auto at = parse_iso8601_us(m.at);
    if (!at) return;
    pids_.insert({m.pid, ""});
    ordered_json args = {{"trigger", m.trigger}, {"at", m.at}};
    if (m.pool) args["pool"] = pool_label(report_, *m.pool, m.pid);
    if (m.waited_seconds) args["waited_seconds"] = *m.waited_seconds;
    if (m.refusal) args["refusal"] = *m.refusal;
    instant(m.pid, 0, *at, m.trigger.str(), "p", std::move(args));
  }

  ordered_json finish() {
    std::int64_t base = std::numeric_limits<std::int64_t>::max();
    for (const Item& i : items_) base = std::min(base, i.span.begin_us);
    for (const Item& i : instants_) base = std::min(base, i.span.begin_us);
    if (base == std::numeric_limits<std::int64_t>::max()) base = 0;

    ordered_json events = ordered_json::array();
    for (const auto& [pid, name] : pids_) {
      std::string label = name.empty() ? "pid " + std::to_string(pid) : name;
      events.push_back({{"name", "process_name"},
                        {"ph", "M"},
                        {"pid", pid},
                        {"tid", 0},
                        {"args", {{"name", label}}}});
    }
    // X events on one thread's track must nest; whatever overlaps without
    // nesting becomes an async pair, which the viewers draw on their own rows.
    std::stable_sort(items_.begin(), items_.end(), [](const Item& a, const Item& b) {
      if (a.pid != b.pid) return a.pid < b.pid;
      if (a.tid != b.tid) return a.tid < b.tid;
      if (a.span.begin_us != b.span.begin_us) return a.span.begin_us < b.span.begin_us;
      if (a.span.end_us != b.span.end_us) return a.span.end_us > b.span.end_us;
      return a.order < b.order;
    });
    std::vector<const Item*> open;
    for (std::size_t k = 0; k < items_.size(); ++k) {
      Item& i = items_[k];
      if (k && (items_[k - 1].pid != i.pid || items_[k - 1].tid != i.tid)) open.clear();
      while (!open.empty() && open.back()->span.end_us <= i.span.begin_us) open.pop_back();
      double ts = static_cast<double>(i.span.begin_us - base);
      double dur = static_cast<double>(i.span.end_us - i.span.begin_us);
      ordered_json e = i.event;
      e["pid"] = i.pid;
      e["tid"] = i.tid;
      e["ts"] = ts;
      if (open.empty() || i.span.end_us <= open.back()->span.end_us) {
        e["ph"] = "X";
        e["dur"] = dur;
        open.push_back(&i);
        events.push_back(std::move(e));
      } else {
        e["ph"] = "b";
        e["id"] = i.id;
        ordered_json end = {{"name", e["name"]}, {"cat", e["cat"]}, {"ph", "e"},     {"id", i.id},
                            {"pid", i.pid},      {"tid", i.tid},    {"ts", ts + dur}};
        events.push_back(std::move(e));
        events.push_back(std::move(end));
      }
    }
    for (Item& i : instants_) {
      i.event["ts"] = static_cast<double>(i.span.begin_us - base);
      events.push_back(std::move(i.event));
    }
    ordered_json doc;
    doc["traceEvents"] = std::move(events);
    doc["displayTimeUnit"] = "ms";
    doc["otherData"] = {{"tool", "connleak"},
                        {"version", report_.version},
                        {"trigger", report_.trigger},
                        {"generated_at", report_.generated_at},
                        {"epoch_us_at_ts_zero", base}};
    return doc;
  }

 private:
  std::string argv0() const { return report_.argv.empty() ? "" : report_.argv.front(); }

  void instant(std::int64_t pid, std::int64_t tid, std::int64_t at_us, std::string name,
               const char* scope, ordered_json args) {
    Item i;
    i.span = {at_us, at_us, false};
    i.event = {{"name", std::move(name)},
               {"cat", "alert"},
               {"ph", "i"},
               {"s", scope},
               {"pid", pid},
               {"tid", tid},
               {"ts", 0.0},
               {"args", std::move(args)}};
    if (std::string(scope) == "p") i.event["cat"] = "snapshot";
    instants_.push_back(std::move(i));
  }

  const Report& report_;
  std::vector<Item> items_;
  std::vector<Item> instants_;
  std::map<std::int64_t, std::string> pids_;
};

}  // namespace

ordered_json to_trace(const Report& report, const std::vector<SnapshotMark>& marks) {
  TraceBuilder builder(report);
  for (const Connection& c : report.connections) builder.add_connection(c);
  for (const Checkout& c : report.checkouts) builder.add_checkout(c);
  for (const SnapshotMark& m : marks) builder.add_snapshot(m);
  return builder.finish();
}

std::string render_trace(const Report& report, const std::vector<SnapshotMark>& marks) {
  return to_trace(report, marks).dump(1, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace connleak
