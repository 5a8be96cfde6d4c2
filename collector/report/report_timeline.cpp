#include "collector/report/report_timeline.h"

#include <cmath>
#include <cstdio>
#include <ctime>
#include <regex>

namespace connleak {

std::optional<std::int64_t> parse_iso8601_us(std::string_view text) {
  int year, month, day, hour, minute, second, consumed = 0;
  std::string s(text);
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%n", &year, &month, &day, &hour, &minute,
                  &second, &consumed) != 6 ||
      consumed != 19)
    return std::nullopt;
  if (month < 1 || month > 12 || day < 1 || day > 31 || hour > 23 || minute > 59 || second > 60)
    return std::nullopt;
  std::int64_t micros = 0;
  std::size_t i = 19;
  if (i < s.size() && s[i] == '.') {
    std::int64_t scale = 100000;
    for (++i; i < s.size() && s[i] >= '0' && s[i] <= '9'; ++i) {
      micros += (s[i] - '0') * scale;
      scale /= 10;
    }
  }
  if (i >= s.size() || s[i] != 'Z') return std::nullopt;
  std::tm tm{};
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  tm.tm_mday = day;
  tm.tm_hour = hour;
  tm.tm_min = minute;
  tm.tm_sec = second;
  return static_cast<std::int64_t>(timegm(&tm)) * 1000000 + micros;
}

std::vector<SnapshotMark> snapshot_marks(const std::vector<Report>& reports) {
  std::vector<SnapshotMark> marks;
  for (const Report& r : reports) {
    if (r.trigger != Trigger::kPoolExhausted && r.trigger != Trigger::kServerRefused) continue;
    marks.push_back(
        {r.pid, r.trigger, r.generated_at, r.snapshot_pool, r.waited_seconds, r.refusal});
  }
  return marks;
}

namespace {

std::int64_t micros(double seconds) {
  if (!std::isfinite(seconds) || seconds < 0) return 0;
  // Rounded by hand: std::llround is libm's, and the shim must not need libm.
  return static_cast<std::int64_t>(seconds * 1e6 + 0.5);
}

std::optional<Span> span_of(const std::string& begin, const std::optional<std::string>& end,
                            double length_seconds) {
  auto b = parse_iso8601_us(begin);
  if (!b) return std::nullopt;
  Span span{*b, *b + micros(length_seconds), true};
  if (end) {
    if (auto e = parse_iso8601_us(*end); e && *e >= *b) {
      span.end_us = *e;
      span.open = false;
    }
  }
  return span;
}

}  // namespace

std::optional<Span> connection_span(const Connection& c) {
  return span_of(c.opened_at, c.closed_at, c.age_seconds);
}

std::optional<Span> checkout_span(const Checkout& c) {
  return span_of(c.checked_out_at, c.returned_at, c.held_seconds);
}

std::optional<Span> transaction_span(const Connection& c) {
  if (!c.transaction || (c.transaction->state != "in_transaction" &&
                         c.transaction->state != "in_error" && c.transaction->state != "active"))
    return std::nullopt;
  auto conn = connection_span(c);
  if (!conn) return std::nullopt;
  Span txn = *conn;
  txn.begin_us = std::max(conn->begin_us, conn->end_us - micros(c.transaction->seconds));
  return txn;
}

std::int64_t alert_time_us(const Span& span, const AlertInfo& alert) {
  return span.begin_us + micros(alert.after_seconds);
}

std::string target_endpoint(const std::string& target) {
  std::string host, port, db;
  // Never destroyed: the shim's exit report runs after static destructors
  // (an atexit handler registered before them), and a destroyed regex throws.
  static const std::regex& kv =
      *new std::regex(R"((host|hostaddr|port|dbname|database|db)=('[^']*'|\S+))");
  for (auto it = std::sregex_iterator(target.begin(), target.end(), kv);
       it != std::sregex_iterator(); ++it) {
    std::string key = (*it)[1], value = (*it)[2];
    if (value.size() >= 2 && value.front() == '\'') value = value.substr(1, value.size() - 2);
    if (key == "host" || (key == "hostaddr" && host.empty()))
      host = value;
    else if (key == "port")
      port = value;
    else
      db = value;
  }
  if (host.empty() && port.empty() && db.empty()) {
    // URI or MySQL form: [scheme://][user@]host[:port][/db][?params]
    static const std::regex& uri =
        *new std::regex(R"(^(?:[a-z+]+://)?(?:[^@/]*@)?([^:/?\s]*)(?::(\d+))?(?:/([^?\s]*))?)");
    std::smatch m;
    if (std::regex_search(target, m, uri)) {
      host = m[1];
      port = m[2];
      db = m[3];
    }
  }
  std::string out;
  auto add = [&](const char* key, const std::string& value) {
    if (value.empty()) return;
    if (!out.empty()) out += ' ';
    out += key;
    out += '=';
    out += value;
  };
  add("host", host);
  add("port", port);
  add("dbname", db);
  return out;
}

}  // namespace connleak
