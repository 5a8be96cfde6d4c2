#include "collector/report/format/report_prometheus.h"

#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <sstream>

#include "collector/report/report_timeline.h"

namespace connleak {

namespace {

// Label values escape backslash, double quote and newline (exposition format).
std::string escape(const std::string& value) {
  std::string out;
  for (char ch : value) {
    if (ch == '\\')
      out += "\\\\";
    else if (ch == '"')
      out += "\\\"";
    else if (ch == '\n')
      out += "\\n";
    else
      out += ch;
  }
  return out;
}

using Labels = std::vector<std::pair<std::string, std::string>>;

std::string labels(const Labels& pairs) {
  if (pairs.empty()) return "";
  std::string out = "{";
  for (std::size_t i = 0; i < pairs.size(); ++i) {
    if (i) out += ',';
    out += pairs[i].first + "=\"" + escape(pairs[i].second) + "\"";
  }
  return out + "}";
}

std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  // Whole numbers in plain digits: le="10", not le="1e+01" (a label is compared as text).
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof buf, "%.0f", v);
    return buf;
  }
  std::snprintf(buf, sizeof buf, "%.17g", v);
  // Shortest form that reads back the same, for a readable file.
  for (int precision = 1; precision <= 17; ++precision) {
    char shorter[64];
    std::snprintf(shorter, sizeof shorter, "%.*g", precision, v);
    if (std::strtod(shorter, nullptr) == v) return shorter;
  }
  return buf;
}

class Writer {
 public:
  void family(const std::string& name, const char* type, const std::string& help) {
    out_ << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << ' ' << type << '\n';
  }
  void sample(const std::string& name, const Labels& l, double value) {
    out_ << name << labels(l) << ' ' << number(value) << '\n';
  }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

// Seconds a connection is lent out: short web requests to stuck batch jobs.
constexpr std::array<double, 12> kUseTimeBuckets = {0.001, 0.005, 0.01, 0.05, 0.1, 0.5,
                                                    1,     5,     10,   60,   300, 3600};

struct Histogram {
  std::array<std::uint64_t, kUseTimeBuckets.size()> buckets{};
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds) {
    for (std::size_t i = 0; i < kUseTimeBuckets.size(); ++i)
      if (seconds <= kUseTimeBuckets[i]) ++buckets[i];
    ++count;
    sum += seconds;
  }
};

std::string pool_name(const PoolInfo& p) {
  return p.name.empty() ? p.kind + "#" + std::to_string(p.id) : p.name;
}

}  // namespace

std::string render_prometheus(const Report& report, const std::vector<SnapshotMark>& marks) {
  // Pools of several processes with one name are one series (summed): a pid
  // label would grow without bound across restarts.
  struct PoolSeries {
    double used = 0, idle = 0, max = 0;
    bool has_max = false;
    Histogram use_time;
    std::uint64_t exhausted = 0;
  };
  std::map<std::string, PoolSeries> pools;
  auto find_pool = [&](std::uint64_t id, std::optional<std::int64_t> pid) -> const PoolInfo* {
    for (const PoolInfo& p : report.pools)
      if (p.id == id && (!pid || !p.pid || *p.pid == *pid)) return &p;
    return nullptr;
  };
  for (const PoolInfo& p : report.pools) {
    PoolSeries& s = pools[pool_name(p)];
    s.used += static_cast<double>(p.checked_out);
    s.idle +=
        p.connections > p.checked_out ? static_cast<double>(p.connections - p.checked_out) : 0;
    if (p.max_size >= 0) {
      s.max += static_cast<double>(p.max_size);
      s.has_max = true;
    }
  }
  for (const Checkout& c : report.checkouts)
    if (const PoolInfo* p = find_pool(c.pool, c.pid))
      pools[pool_name(*p)].use_time.observe(c.held_seconds);
  for (const SnapshotMark& m : marks)
    if (m.trigger == Trigger::kPoolExhausted && m.pool)
      if (const PoolInfo* p = find_pool(*m.pool, m.pid)) ++pools[pool_name(*p)].exhausted;

  Writer w;
  w.family("db_client_connection_count", "gauge",
           "Connections in the state given by the state label (OpenTelemetry "
           "db.client.connection.count): used = checked out, idle = in the pool.");
  for (const auto& [name, s] : pools) {
    w.sample("db_client_connection_count", {{"pool_name", name}, {"state", "idle"}}, s.idle);
    w.sample("db_client_connection_count", {{"pool_name", name}, {"state", "used"}}, s.used);
  }
  w.family("db_client_connection_max", "gauge",
           "The most open connections the pool allows (OpenTelemetry db.client.connection.max).");
  for (const auto& [name, s] : pools)
    if (s.has_max) w.sample("db_client_connection_max", {{"pool_name", name}}, s.max);
  w.family("db_client_connection_use_time_seconds", "histogram",
           "Time between borrowing a connection and returning it, of the checkouts the report "
           "lists (OpenTelemetry db.client.connection.use_time).");
  for (const auto& [name, s] : pools) {
    for (std::size_t i = 0; i < kUseTimeBuckets.size(); ++i)
      w.sample("db_client_connection_use_time_seconds_bucket",
               {{"pool_name", name}, {"le", number(kUseTimeBuckets[i])}},
               static_cast<double>(s.use_time.buckets[i]));
    w.sample("db_client_connection_use_time_seconds_bucket", {{"pool_name", name}, {"le", "+Inf"}},
             static_cast<double>(s.use_time.count));
    w.sample("db_client_connection_use_time_seconds_sum", {{"pool_name", name}}, s.use_time.sum);
    w.sample("db_client_connection_use_time_seconds_count", {{"pool_name", name}},
             static_cast<double>(s.use_time.count));
  }
  // OTel's db.client.connection.timeouts: every pool_exhausted snapshot is a
  // caller whose wait for a connection ended in the pool's timeout error (the
  // adapters call connleak_pool_exhausted from exactly that except clause).
  w.family("db_client_connection_timeouts_total", "counter",
           "Connection timeouts while waiting for a connection from the pool (OpenTelemetry "
           "db.client.connection.timeouts).");
  for (const auto& [name, s] : pools)
    w.sample("db_client_connection_timeouts_total", {{"pool_name", name}},
             static_cast<double>(s.exhausted));
  w.family(
      "connleak_pool_exhausted_total", "counter",
      "pool_exhausted snapshots taken (a caller waited for a connection the pool did not have).");
  for (const auto& [name, s] : pools)
    w.sample("connleak_pool_exhausted_total", {{"pool_name", name}},
             static_cast<double>(s.exhausted));

  std::map<std::pair<std::string, std::string>, std::uint64_t> open;
  std::map<std::string, std::uint64_t> alerts;
  for (const Connection& c : report.connections) {
    if (c.status != ConnStatus::kClosed) ++open[{c.library.str(), target_endpoint(c.target)}];
    for (const AlertInfo& a : c.alerts) ++alerts[a.kind.str()];
  }
  for (const Checkout& c : report.checkouts)
    for (const AlertInfo& a : c.alerts) ++alerts[a.kind.str()];
  w.family("connleak_connections_open", "gauge",
           "Connections open when the report was written, by client library and target "
           "(host, port, database only).");
  for (const auto& [key, n] : open)
    w.sample("connleak_connections_open", {{"library", key.first}, {"target", key.second}},
             static_cast<double>(n));
  const Summary& s = report.summary;
  w.family("connleak_connections_opened_total", "counter", "Connections the program opened.");
  w.sample("connleak_connections_opened_total", {}, static_cast<double>(s.opened));
  w.family("connleak_connections_closed_total", "counter", "Connections the program closed.");
  w.sample("connleak_connections_closed_total", {}, static_cast<double>(s.closed));
  w.family("connleak_leaked_total", "counter",
           "Connections still open at exit that no pool held (status leaked).");
  w.sample("connleak_leaked_total", {}, static_cast<double>(s.leaked));
  w.family("connleak_checkouts_leaked_total", "counter",
           "Pool checkouts never returned, or reclaimed by the garbage collector.");
  w.sample("connleak_checkouts_leaked_total", {}, static_cast<double>(s.checkouts.leaked));
  w.family("connleak_alerts_total", "counter",
           "Alerts carried by the connections and checkouts the report lists, by kind.");
  for (const auto& [kind, n] : alerts)
    w.sample("connleak_alerts_total", {{"kind", kind}}, static_cast<double>(n));
  w.family("connleak_report_timestamp_seconds", "gauge",
           "When the report behind these values was written (Unix time).");
  auto at = parse_iso8601_us(report.generated_at);
  w.sample("connleak_report_timestamp_seconds", {}, at ? static_cast<double>(*at) / 1e6 : 0);
  return w.str();
}

}  // namespace connleak
