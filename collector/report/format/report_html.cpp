#include "collector/report/format/report_html.h"

#include <algorithm>
#include <limits>
#include <map>

#include "collector/report/format/report_text.h"
#include "collector/report/report_checkouts.h"
#include "collector/report/report_findings.h"

namespace connleak {

using nlohmann::ordered_json;

namespace {

// [function, file, line, module, user, script] (script: a Python/Ruby/... frame): arrays keep
// 10,000 lanes small.
ordered_json frames(const Stacks& stacks) {
  ordered_json out = ordered_json::array();
  auto add = [&](const Frame& f, bool script) {
    out.push_back({f.function ? ordered_json(*f.function) : ordered_json(nullptr),
                   f.file ? ordered_json(*f.file) : ordered_json(nullptr),
                   f.line ? ordered_json(*f.line) : ordered_json(nullptr),
                   f.module ? ordered_json(*f.module) : ordered_json(nullptr),
                   is_library_frame(f) ? 0 : 1, script ? 1 : 0});
  };
  if (stacks.script)
    for (const Frame& f : *stacks.script) add(f, true);
  for (const Frame& f : stacks.native) add(f, false);
  return out;
}

double ms(std::int64_t us, std::int64_t base) {
  return static_cast<double>(us - base) / 1000.0;
}

ordered_json alerts_json(const std::vector<AlertInfo>& alerts, const Span& span,
                         std::int64_t base) {
  ordered_json out = ordered_json::array();
  for (const AlertInfo& a : alerts)
    out.push_back({a.kind, ms(alert_time_us(span, a), base), a.after_seconds});
  return out;
}

}  // namespace

ordered_json html_data(const Report& report, const std::vector<SnapshotMark>& marks) {
  std::int64_t base = std::numeric_limits<std::int64_t>::max(), end = 0;
  auto widen = [&](const Span& s) {
    base = std::min(base, s.begin_us);
    end = std::max(end, s.end_us);
  };
  for (const Connection& c : report.connections)
    if (auto s = connection_span(c)) widen(*s);
  for (const Checkout& c : report.checkouts)
    if (auto s = checkout_span(c)) widen(*s);
  for (const SnapshotMark& m : marks)
    if (auto t = parse_iso8601_us(m.at)) widen({*t, *t, false});
  if (auto t = parse_iso8601_us(report.generated_at)) {
    if (base == std::numeric_limits<std::int64_t>::max()) base = *t;
    end = std::max(end, *t);
  }
  if (base == std::numeric_limits<std::int64_t>::max()) base = end = 0;

  ordered_json conns = ordered_json::array();
  for (const Connection& c : report.connections) {
    auto span = connection_span(c);
    if (!span) continue;
    std::int64_t pid = c.pid.value_or(report.pid);
    ordered_json j;
    j["id"] = c.id;
    j["pid"] = pid;
    j["lib"] = c.library;
    j["tid"] = c.thread;
    j["handle"] = c.handle;
    j["target"] = c.target;
    j["endpoint"] = target_endpoint(c.target);
    j["status"] = c.status;
    j["state"] = c.state;
    j["b"] = ms(span->begin_us, base);
    j["e"] = ms(span->end_us, base);
    j["open"] = span->open;
    j["opened_at"] = c.opened_at;
    j["closed_at"] = c.closed_at ? ordered_json(*c.closed_at) : ordered_json(nullptr);
    if (auto t = transaction_span(c))
      j["txn"] = {ms(t->begin_us, base), ms(t->end_us, base), c.transaction->state,
                  c.transaction->seconds};
    j["alerts"] = alerts_json(c.alerts, *span, base);
    j["pool"] = c.pool ? ordered_json(pool_label(report, *c.pool, c.pid)) : ordered_json(nullptr);
    if (c.server_id) j["server_id"] = *c.server_id;
    if (c.last_statement) j["last"] = *c.last_statement;
    if (c.statements) j["stmts"] = *c.statements;
    if (c.closed_by) j["closed_by"] = *c.closed_by;
    j["site"] = frame_title(title_frame(c.acquired));
    j["stack"] = frames(c.acquired);
    if (c.closed_from) j["closed_from"] = frames(*c.closed_from);
    if (c.transaction && c.transaction->began) j["txn_began"] = frames(*c.transaction->began);
    conns.push_back(std::move(j));
  }
  ordered_json checkouts = ordered_json::array();
  for (const Checkout& c : report.checkouts) {
    auto span = checkout_span(c);
    if (!span) continue;
    ordered_json j;
    j["id"] = c.id;
    j["pid"] = c.pid.value_or(report.pid);
    j["pool"] = pool_label(report, c.pool, c.pid);
    j["conn"] = c.connection ? ordered_json(*c.connection) : ordered_json(nullptr);
    j["status"] = c.status;
    j["tid"] = c.thread;
    if (c.task) j["task"] = *c.task;
    j["b"] = ms(span->begin_us, base);
    j["e"] = ms(span->end_us, base);
    j["open"] = span->open;
    j["held"] = c.held_seconds;
    if (c.in_transaction) j["in_txn"] = *c.in_transaction;
    j["alerts"] = alerts_json(c.alerts, *span, base);
    j["site"] = frame_title(title_frame(c.acquired));
    j["stack"] = frames(c.acquired);
    if (c.holder_now) j["holder"] = frames(*c.holder_now);
    checkouts.push_back(std::move(j));
  }
  ordered_json snaps = ordered_json::array();
  for (const SnapshotMark& m : marks) {
    auto t = parse_iso8601_us(m.at);
    if (!t) continue;
    ordered_json j = {{"pid", m.pid}, {"trigger", m.trigger}, {"t", ms(*t, base)}};
    if (m.pool) j["pool"] = pool_label(report, *m.pool, m.pid);
    if (m.waited_seconds) j["waited"] = *m.waited_seconds;
    if (m.refusal) j["refusal"] = *m.refusal;
    snaps.push_back(std::move(j));
  }
  // Sites: the same acquisition stack across processes is one row, as in the text report.
  struct Site {
    std::string title, kind;
    std::map<std::string, std::uint64_t> statuses;
    std::uint64_t count = 0;
  };
  std::map<std::string, Site> sites;
  auto count_site = [&](const std::string& kind, const Stacks& stacks, const std::string& status) {
    Site& s = sites[kind + '\n' + site_key(stacks)];
    s.title = frame_title(title_frame(stacks));
    s.kind = kind;
    ++s.count;
    ++s.statuses[status];
  };
  for (const Connection& c : report.connections)
    count_site("connection", c.acquired, c.status.str());
  for (const Checkout& c : report.checkouts) count_site("checkout", c.acquired, c.status.str());
  std::vector<Site> ordered;
  for (auto& [key, s] : sites) ordered.push_back(std::move(s));
  std::stable_sort(ordered.begin(), ordered.end(),
                   [](const Site& a, const Site& b) { return a.count > b.count; });
  ordered_json site_rows = ordered_json::array();
  for (const Site& s : ordered)
    site_rows.push_back(
        {{"site", s.title}, {"kind", s.kind}, {"count", s.count}, {"statuses", s.statuses}});

  ordered_json data;
  data["meta"] = {{"version", report.version},
                  {"pid", report.pid},
                  {"argv", report.argv},
                  {"trigger", report.trigger},
                  {"generated_at", report.generated_at},
                  {"start_epoch_ms", static_cast<double>(base) / 1000.0},
                  {"span_ms", ms(end, base)},
                  {"summary",
                   {{"opened", report.summary.opened},
                    {"closed", report.summary.closed},
                    {"open", report.summary.open},
                    {"leaked", report.summary.leaked},
                    {"flagged", report.summary.flagged},
                    {"pooled", report.summary.pooled},
                    {"checkouts_leaked", report.summary.checkouts.leaked}}}};
  data["conns"] = std::move(conns);
  data["checkouts"] = std::move(checkouts);
  data["snapshots"] = std::move(snaps);
  data["sites"] = std::move(site_rows);
  return data;
}

std::string render_html(const Report& report, const std::vector<SnapshotMark>& marks) {
  std::string json =
      html_data(report, marks).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  // "</script>" (or any "</") inside a string would end the data block early.
  std::string escaped;
  escaped.reserve(json.size());
  for (std::size_t i = 0; i < json.size(); ++i) {
    escaped += json[i];
    if (json[i] == '<' && i + 1 < json.size() && json[i + 1] == '/') escaped += '\\';
  }
  std::string page = kHtmlPage;
  std::string placeholder = kHtmlDataPlaceholder;
  std::size_t at = page.find(placeholder);
  page.replace(at, placeholder.size(), escaped);
  return page;
}

}  // namespace connleak
