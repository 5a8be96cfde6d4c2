// The pictures and metrics writers on a model built in code: Chrome trace
// events (nesting, async fallback, instants), the HTML page's embedded data
// (escaping), Prometheus text (grammar and values), and the shared timeline
// helpers.
#include <gtest/gtest.h>

#include <map>
#include <nlohmann/json.hpp>

#include "collector/report/format/report_html.h"
#include "collector/report/format/report_prometheus.h"
#include "collector/report/format/report_trace.h"
#include "collector/report/report_timeline.h"
#include "tests/common/prometheus_grammar.h"

namespace connleak {
namespace {

using nlohmann::json;

Frame frame(const char* function, const char* file, int line) {
  Frame f;
  f.address = 0x401000;
  f.module = "/srv/app";
  f.function = function;
  f.file = file;
  f.line = line;
  return f;
}

Connection conn(std::uint64_t id, const char* opened, std::optional<std::string> closed, double age,
                const char* status) {
  Connection c;
  c.id = id;
  c.library = ConnLibrary::kLibpq;
  c.handle = "0x1";
  c.target = "host=db.internal port=5432 dbname=shop user=app";
  c.status = status;
  c.state = "connected";
  c.opened_at = opened;
  c.closed_at = closed;
  c.age_seconds = age;
  c.thread = 77;
  c.pid = 42;
  c.acquired.native = {frame("open_db", "/src/app.c", 12), frame("main", "/src/app.c", 40)};
  return c;
}

// Thread 77: #1 [0, 10 s] leaked with a 4 s transaction and a lifetime alert;
// #2 [2 s, 5 s] closed (nests in #1); #3 [8 s, 12 s] overlaps #1 without nesting.
// A pool with 3 connections, one checkout of #1 held 3 s (open) and one returned.
Report model() {
  Report r;
  r.version = "0.1.0";
  r.pid = 42;
  r.trigger = Trigger::kExit;
  r.generated_at = "2026-11-21T10:00:12.000Z";
  r.summary.opened = 5;
  r.summary.closed = 2;
  r.summary.leaked = 1;
  r.summary.checkouts.leaked = 1;
  Connection a = conn(1, "2026-11-21T10:00:00.000Z", std::nullopt, 10.0, "leaked");
  a.transaction = TransactionInfo{"in_transaction", 4.0, std::nullopt, std::nullopt};
  a.alerts.push_back({"lifetime", 6.0});
  a.last_statement = "SELECT * FROM orders WHERE id = ?";
  a.pool = 3;
  Connection b = conn(2, "2026-11-21T10:00:02.000Z", "2026-11-21T10:00:05.000Z", 3.0, "closed");
  b.alerts.push_back({"double_close", 3.0});
  Connection c = conn(3, "2026-11-21T10:00:08.000Z", std::nullopt, 4.0, "open");
  r.connections = {a, b, c};
  PoolInfo p;
  p.id = 3;
  p.kind = "c.TestPool";
  p.name = "c#1";
  p.max_size = 5;
  p.connections = 3;
  p.checked_out = 1;
  p.pid = 42;
  r.pools = {p};
  Checkout k;
  k.id = 9;
  k.pool = 3;
  k.connection = 1;
  k.status = CheckoutStatus::kLeaked;
  k.checked_out_at = "2026-11-21T10:00:07.000Z";
  k.held_seconds = 3.0;
  k.thread = 77;
  k.pid = 42;
  k.acquired.native = {frame("leaky_request", "/src/pool.c", 7)};
  Checkout done = k;
  done.id = 8;
  done.status = CheckoutStatus::kReturned;
  done.checked_out_at = "2026-11-21T10:00:01.000Z";
  done.returned_at = "2026-11-21T10:00:01.250Z";
  done.held_seconds = 0.25;
  done.alerts.push_back({"checkout_held", 0.2});
  r.checkouts = {k, done};
  return r;
}

std::vector<SnapshotMark> marks() {
  return {{42, "pool_exhausted", "2026-11-21T10:00:11.000Z", 3, 2.5, std::nullopt}};
}

TEST(Timeline, ParsesIsoTimestampsAndRejectsOthers) {
  EXPECT_EQ(parse_iso8601_us("1970-01-01T00:00:01.5Z"), 1500000);
  EXPECT_EQ(parse_iso8601_us("2026-11-21T10:00:00.123Z"), 1795255200123000);
  EXPECT_FALSE(parse_iso8601_us("2026-11-21 10:00:00Z"));
  EXPECT_FALSE(parse_iso8601_us("2026-11-21T10:00:00.123"));
  EXPECT_FALSE(parse_iso8601_us(""));
}

TEST(Timeline, EndpointKeepsHostPortAndDatabaseOnly) {
  EXPECT_EQ(target_endpoint("host=db port=5432 dbname=app user=alice sslmode=require"),
            "host=db port=5432 dbname=app");
  EXPECT_EQ(target_endpoint("postgresql://alice@db.internal:6432/shop?sslmode=require"),
            "host=db.internal port=6432 dbname=shop");
  EXPECT_EQ(target_endpoint("alice@127.0.0.1:3306/shop"), "host=127.0.0.1 port=3306 dbname=shop");
}

TEST(Timeline, SpansComeFromTimestampsOrAges) {
  Report r = model();
  auto a = connection_span(r.connections[0]);
  ASSERT_TRUE(a);
  EXPECT_TRUE(a->open);
  EXPECT_EQ(a->end_us - a->begin_us, 10000000);
  auto t = transaction_span(r.connections[0]);
  ASSERT_TRUE(t);
  EXPECT_EQ(t->end_us - t->begin_us, 4000000);
  EXPECT_EQ(t->end_us, a->end_us);
  auto b = connection_span(r.connections[1]);
  EXPECT_FALSE(b->open);
  EXPECT_FALSE(transaction_span(r.connections[1]));
}

TEST(TraceFormat, EventsNestOnThreadTracksAndOverlapsGoAsync) {
  json doc = json::parse(render_trace(model(), marks()));
  ASSERT_TRUE(doc["traceEvents"].is_array());
  EXPECT_EQ(doc["otherData"]["tool"], "connleak");
  std::map<std::string, json> by_name;
  std::map<std::string, int> phases;
  for (const json& e : doc["traceEvents"]) {
    // Required fields of every event in the format.
    for (const char* key : {"name", "ph", "pid", "tid"}) ASSERT_TRUE(e.contains(key)) << e;
    if (e["ph"] != "M") ASSERT_TRUE(e["ts"].is_number()) << e;
    if (e["ph"] == "X") ASSERT_TRUE(e["dur"].is_number()) << e;
    ++phases[e["ph"]];
    by_name[e["name"].get<std::string>() + "/" + e["ph"].get<std::string>()] = e;
  }
  // #1 starts at ts 0 and lasts 10 s; the transaction nests at its end.
  json one = by_name["libpq #1 leaked/X"];
  EXPECT_EQ(one["ts"], 0.0);
  EXPECT_EQ(one["dur"], 10e6);
  EXPECT_EQ(one["tid"], 77);
  EXPECT_EQ(one["args"]["last_statement"], "SELECT * FROM orders WHERE id = ?");
  EXPECT_EQ(one["args"]["acquired"][0], "#0 0x401000 in open_db /src/app.c:12 (/srv/app)");
  EXPECT_EQ(one["args"]["pool"], "c.TestPool c#1");
  json txn = by_name["transaction in_transaction/X"];
  EXPECT_EQ(txn["ts"], 6e6);
  EXPECT_EQ(txn["dur"], 4e6);
  EXPECT_EQ(by_name["libpq #2 closed/X"]["dur"], 3e6);
  // #3 [8, 12] crosses #1's end: an async begin/end pair, not a broken X.
  ASSERT_TRUE(by_name.count("libpq #3 open/b")) << doc.dump(1);
  EXPECT_EQ(by_name["libpq #3 open/b"]["ts"], 8e6);
  EXPECT_EQ(by_name["libpq #3 open/e"]["ts"], 12e6);
  EXPECT_EQ(by_name["libpq #3 open/b"]["id"], by_name["libpq #3 open/e"]["id"]);
  // Checkout #9 [7, 10] crosses the transaction [6, 10]? No: it nests in it.
  EXPECT_EQ(by_name["checkout #9 leaked/X"]["ts"], 7e6);
  // Alerts and the snapshot are instants.
  EXPECT_EQ(by_name["alert: lifetime/i"]["ts"], 6e6);
  EXPECT_EQ(by_name["alert: lifetime/i"]["s"], "t");
  EXPECT_EQ(by_name["alert: checkout_held/i"]["ts"], 1.2e6);
  EXPECT_EQ(by_name["pool_exhausted/i"]["ts"], 11e6);
  EXPECT_EQ(by_name["pool_exhausted/i"]["s"], "p");
  EXPECT_EQ(by_name["pool_exhausted/i"]["args"]["waited_seconds"], 2.5);
  EXPECT_EQ(phases["b"], phases["e"]);
  EXPECT_EQ(by_name["process_name/M"]["pid"], 42);
}

TEST(TraceFormat, CompleteEventsOnOneTrackNest) {
  json doc = json::parse(render_trace(model(), marks()));
  std::map<std::pair<std::int64_t, std::int64_t>, std::vector<std::pair<double, double>>> tracks;
  for (const json& e : doc["traceEvents"])
    if (e["ph"] == "X")
      tracks[{e["pid"], e["tid"]}].push_back(
          {e["ts"], e["ts"].get<double>() + e["dur"].get<double>()});
  for (auto& [track, spans] : tracks)
    for (auto& x : spans)
      for (auto& y : spans) {
        bool disjoint = x.second <= y.first || y.second <= x.first;
        bool nested = (x.first <= y.first && y.second <= x.second) ||
                      (y.first <= x.first && x.second <= y.second);
        EXPECT_TRUE(disjoint || nested)
            << x.first << "-" << x.second << " vs " << y.first << "-" << y.second;
      }
}

TEST(HtmlFormat, DataBlockIsEscapedAndComplete) {
  Report r = model();
  r.connections[0].acquired.native[0].function = "evil</script><script>alert(1)</script>";
  std::string page = render_html(r, marks());
  EXPECT_EQ(page.find("http://"), std::string::npos);  // nothing fetched at view time
  EXPECT_EQ(page.find("https://"), std::string::npos);
  const std::string open = "<script type=\"application/json\" id=\"connleak-data\">";
  std::size_t begin = page.find(open);
  ASSERT_NE(begin, std::string::npos);
  begin += open.size();
  std::size_t end = page.find("</script>", begin);
  std::string block = page.substr(begin, end - begin);
  EXPECT_EQ(block.find("</"), std::string::npos);
  json data = json::parse(block);
  EXPECT_EQ(data["conns"].size(), 3u);
  EXPECT_EQ(data["conns"][0]["stack"][0][0], "evil</script><script>alert(1)</script>");
  EXPECT_EQ(data["conns"][0]["status"], "leaked");
  EXPECT_EQ(data["conns"][0]["endpoint"], "host=db.internal port=5432 dbname=shop");
  EXPECT_EQ(data["conns"][0]["txn"][0], 6000.0);
  EXPECT_EQ(data["checkouts"].size(), 2u);
  EXPECT_EQ(data["checkouts"][0]["conn"], 1);
  EXPECT_EQ(data["snapshots"][0]["t"], 11000.0);
  EXPECT_EQ(data["meta"]["span_ms"], 12000.0);
  // Sites by count: open_db opened #2 and #3, leaky_request took both checkouts.
  ASSERT_EQ(data["sites"].size(), 3u);
  EXPECT_EQ(data["sites"][0]["count"], 2);
  EXPECT_EQ(data["sites"][1]["count"], 2);
  EXPECT_EQ(data["sites"][2]["count"], 1);
  EXPECT_EQ(data["sites"][2]["site"], "evil</script><script>alert(1)</script> (/src/app.c:12)");
}

TEST(PrometheusFormat, ValidTextWithPoolAndLeakValues) {
  std::string text = render_prometheus(model(), marks());
  EXPECT_EQ(test_prometheus::check(text), "") << text;
  auto has = [&](const std::string& line) { return text.find(line + "\n") != std::string::npos; };
  EXPECT_TRUE(has("db_client_connection_count{pool_name=\"c#1\",state=\"idle\"} 2")) << text;
  EXPECT_TRUE(has("db_client_connection_count{pool_name=\"c#1\",state=\"used\"} 1")) << text;
  EXPECT_TRUE(has("db_client_connection_max{pool_name=\"c#1\"} 5")) << text;
  EXPECT_TRUE(has("db_client_connection_use_time_seconds_bucket{pool_name=\"c#1\",le=\"0.1\"} 0"));
  EXPECT_TRUE(has("db_client_connection_use_time_seconds_bucket{pool_name=\"c#1\",le=\"0.5\"} 1"));
  EXPECT_TRUE(has("db_client_connection_use_time_seconds_bucket{pool_name=\"c#1\",le=\"5\"} 2"));
  EXPECT_TRUE(has("db_client_connection_use_time_seconds_sum{pool_name=\"c#1\"} 3.25"));
  EXPECT_TRUE(has("db_client_connection_use_time_seconds_count{pool_name=\"c#1\"} 2"));
  EXPECT_TRUE(has("connleak_pool_exhausted_total{pool_name=\"c#1\"} 1"));
  EXPECT_TRUE(has("db_client_connection_timeouts_total{pool_name=\"c#1\"} 1"));
  EXPECT_TRUE(
      has("connleak_connections_open{library=\"libpq\",target=\"host=db.internal port=5432 "
          "dbname=shop\"} 2"))
      << text;
  EXPECT_TRUE(has("connleak_leaked_total 1"));
  EXPECT_TRUE(has("connleak_alerts_total{kind=\"checkout_held\"} 1"));
  EXPECT_TRUE(has("connleak_alerts_total{kind=\"double_close\"} 1"));
  EXPECT_TRUE(has("connleak_alerts_total{kind=\"lifetime\"} 1"));
  EXPECT_EQ(text.find("user=app"), std::string::npos);  // labels carry no user
}

TEST(PrometheusFormat, LabelValuesAreEscapedAndTheCheckerCatchesBadLines) {
  Report r = model();
  r.pools[0].name = "we\"ird\\pool\nname";
  std::string text = render_prometheus(r);
  EXPECT_EQ(test_prometheus::check(text), "") << text;
  EXPECT_NE(text.find("pool_name=\"we\\\"ird\\\\pool\\nname\""), std::string::npos) << text;
  EXPECT_NE(test_prometheus::check("# TYPE x gauge\nx{a=\"b\"c\"} 1\n"), "");
  EXPECT_NE(test_prometheus::check("# TYPE x gauge\ny 1\n"), "");
  EXPECT_NE(test_prometheus::check("# TYPE x gauge\n# TYPE x gauge\n"), "");
}

}  // namespace
}  // namespace connleak
