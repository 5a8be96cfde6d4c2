// Pictures and metrics of a real run: programs/pool_host.c (a C pool over real
// libpq connections, tests/e2e) runs under `connleak run` against the test
// PostgreSQL as the password user, with one plain leaked connection, a pool of
// three, a returned checkout, two checkouts never returned (one inside a
// transaction that ran a statement with literals) and a pool_exhausted
// snapshot. Its reports are rendered as a Chrome trace, an HTML timeline
// (opened in headless Chromium) and Prometheus text (checked by promtool).
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <regex>

#include "tests/cli/harness.h"
#include "tests/common/prometheus_grammar.h"

using namespace cli_test;
using nlohmann::json;

namespace {

std::string app_conninfo() {
  const auto& env = pg_env();
  return "host=" + env.at("CONNLEAK_TEST_PG_HOST") + " port=" + env.at("CONNLEAK_TEST_PG_PORT") +
         " dbname=" + env.at("CONNLEAK_TEST_PG_APP_DB") +
         " user=" + env.at("CONNLEAK_TEST_PG_APP_USER") +
         " password=" + env.at("CONNLEAK_TEST_PG_APP_PASSWORD");
}

// One run shared by the tests: its report files (exit report and snapshot dump).
struct PictureFiles {
  TempDir dir;
  std::vector<std::string> files;
  json merged;
};

const PictureFiles& real_run() {
  static PictureFiles* run = [] {
    auto* r = new PictureFiles;
    Result res = connleak({"run", "--report-dir", r->dir.path(), "--", bin("pool_host"), "open 3",
                           "pool 5", "open 0", "open 1", "open 2", "clean 0", "begin 1", "query 1",
                           "leak 1", "hold_a 2", "exhausted", "exit"},
                          {.env = {{"CONNLEAK_TEST_PG_CONNINFO", app_conninfo()}}, .pg = true});
    EXPECT_EQ(res.exit_code, 23) << describe(res);
    for (const auto& entry : std::filesystem::directory_iterator(r->dir.path()))
      r->files.push_back(entry.path().string());
    std::sort(r->files.begin(), r->files.end());
    std::vector<std::string> args = {"report", "--format", "json"};
    args.insert(args.end(), r->files.begin(), r->files.end());
    r->merged = json::parse(connleak(args).out);
    return r;
  }();
  return *run;
}

Result render(const std::string& format, const std::string& out) {
  std::vector<std::string> args = {"report", "--format", format, "-o", out};
  args.insert(args.end(), real_run().files.begin(), real_run().files.end());
  return connleak(args);
}

std::size_t count(const std::string& text, const std::string& needle) {
  std::size_t n = 0;
  for (std::size_t at = text.find(needle); at != std::string::npos;
       at = text.find(needle, at + needle.size()))
    ++n;
  return n;
}

std::string artifacts_dir() {
  std::string dir = std::string(CONNLEAK_BUILD_DIR) + "/test-artifacts";
  std::filesystem::create_directories(dir);
  return dir;
}

bool have(const char* tool) {
  return run({"/bin/sh", "-c", std::string("command -v ") + tool}).exit_code == 0;
}

}  // namespace

TEST(PictureRun, ReportsHoldTheRunAndTheSnapshot) {
  const PictureFiles& r = real_run();
  ASSERT_EQ(r.files.size(), 2u);  // connleak.<pid>.json and the pool_exhausted dump
  // The dump's connections are superseded by the exit report (not counted twice).
  EXPECT_EQ(r.merged["connections"].size(), 4u) << r.merged.dump(1);
  EXPECT_EQ(r.merged["summary"]["leaked"], 1);
  EXPECT_EQ(r.merged["checkouts"].size(), 3u);
}

TEST(PictureRun, TraceHasEveryConnectionCheckoutAndTheSnapshot) {
  TempDir out;
  Result res = render("trace", out.file("trace.json"));
  EXPECT_EQ(res.exit_code, 23) << describe(res);
  json doc = json::parse(read_file(out.file("trace.json")));
  std::map<std::string, int> cats;
  json leaked, txn, exhausted, held;
  for (const json& e : doc["traceEvents"]) {
    for (const char* key : {"name", "ph", "pid", "tid"}) ASSERT_TRUE(e.contains(key)) << e;
    std::string ph = e["ph"], cat = e.value("cat", ""), name = e["name"];
    json args = e.value("args", json::object());
    if (ph == "X" || ph == "b") ++cats[cat];
    if (cat == "connection" && ph != "e" && args.value("status", "") == "leaked") leaked = e;
    if (cat == "transaction" && ph != "e") txn = e;
    if (name == "pool_exhausted") exhausted = e;
    if (cat == "checkout" && ph != "e" && args.value("status", "") == "leaked" &&
        args.value("in_transaction", false))
      held = e;
  }
  EXPECT_EQ(cats["connection"], 4);
  EXPECT_EQ(cats["checkout"], 3);
  EXPECT_EQ(cats["transaction"], 1);
  ASSERT_FALSE(leaked.is_null());
  EXPECT_EQ(leaked["cname"], "terrible");
  EXPECT_EQ(leaked["pid"], real_run().merged["pid"]);
  bool names_site = false;
  for (const json& line : leaked["args"]["acquired"])
    if (line.get<std::string>().find("in connect_or_die ") != std::string::npos &&
        line.get<std::string>().find("pool_host.c:") != std::string::npos)
      names_site = true;
  EXPECT_TRUE(names_site) << leaked.dump(1);
  ASSERT_FALSE(txn.is_null());
  EXPECT_EQ(txn["args"]["state"], "in_transaction");
  ASSERT_FALSE(held.is_null());
  EXPECT_NE(held["args"]["acquired"].dump().find("leaky_request"), std::string::npos);
  ASSERT_FALSE(exhausted.is_null());
  EXPECT_EQ(exhausted["ph"], "i");
  EXPECT_EQ(exhausted["args"]["waited_seconds"], 2.5);
}

TEST(PictureRun, NoPasswordOrSqlLiteralInAnyFormat) {
  for (const char* format : {"trace", "html", "prometheus", "json"}) {
    TempDir out;
    render(format, out.file("out"));
    std::string text = read_file(out.file("out"));
    ASSERT_FALSE(text.empty()) << format;
    EXPECT_EQ(text.find("Sup3r-s3cret-pw"), std::string::npos) << format;
    EXPECT_EQ(text.find("hunter2"), std::string::npos) << format;  // the pool's name had it
    EXPECT_EQ(text.find("picture-literal-4242"), std::string::npos) << format;
    EXPECT_EQ(text.find("= 4242"), std::string::npos) << format;
    // Canary: the statement itself made it into the pictures, normalized.
    if (std::string(format) != "prometheus")
      EXPECT_NE(text.find("SELECT ? AS secret WHERE ? = ?"), std::string::npos) << format;
  }
}

TEST(PictureRun, HtmlTimelineRendersInHeadlessChromium) {
  if (!have("chromium")) GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh)";
  TempDir out;
  std::string page = out.file("report.html");
  render("html", page);
  const json& merged = real_run().merged;
  std::string leaked_key;
  for (const json& c : merged["connections"])
    if (c["status"] == "leaked")
      leaked_key = "c" + std::to_string(c["pid"].get<long long>()) + "-" +
                   std::to_string(c["id"].get<long long>());
  ASSERT_FALSE(leaked_key.empty());
  // #select= clicks the lane once the page has drawn (the page's own click handler).
  Result dom =
      run({"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--virtual-time-budget=10000",
           "--dump-dom", "file://" + page + "#select=" + leaked_key},
          {.timeout_seconds = 120});
  ASSERT_EQ(dom.exit_code, 0) << describe(dom);
  // The drawn document, without the page's script and data (which spell the same markup).
  const std::string html = dom.out.substr(0, dom.out.find("<script type=\"application/json\""));
  // One lane per connection (every checkout lends one of them), one of them leaked.
  EXPECT_EQ(count(html, "<div class=\"lane "), merged["connections"].size())
      << html.substr(0, 4000);
  EXPECT_EQ(count(html, "<div class=\"lane st-leaked"), 1u);
  EXPECT_EQ(count(html, "class=\"bar co st-leaked\""), 2u);
  EXPECT_EQ(count(html, "class=\"bar co st-returned\""), 1u);
  EXPECT_EQ(count(html, "<div class=\"txn\""), 1u);
  EXPECT_EQ(count(html, "class=\"vline\""), 1u);  // the pool_exhausted snapshot
  EXPECT_NE(html.find("data-lanes=\"4\""), std::string::npos);
  // The clicked lane's details: the program's frame first, then the library's, folded.
  std::size_t detail = html.find("<aside id=\"detail\">");
  ASSERT_NE(detail, std::string::npos);
  std::string panel = html.substr(detail, html.find("</aside>", detail) - detail);
  EXPECT_NE(panel.find("<span class=\"status leaked\">leaked</span>"), std::string::npos) << panel;
  EXPECT_NE(panel.find("<h3>opened from</h3><ol class=\"stack user\"><li><code>connect_or_die "),
            std::string::npos)
      << panel;
  EXPECT_TRUE(std::regex_search(panel, std::regex("library frames</summary>.*__libc_start_main")))
      << panel;
  EXPECT_NE(panel.find("dbname=connleak user=app"), std::string::npos) << panel;
  // The sites table, largest first: connect_or_die() opened all four.
  std::size_t sites = html.find("<table id=\"sites\">");
  ASSERT_NE(sites, std::string::npos);
  EXPECT_NE(html.find("<tbody><tr><td>4</td><td>connect_or_die (", sites), std::string::npos)
      << html.substr(sites);
  EXPECT_NE(html.find("<td>take (", sites), std::string::npos) << html.substr(sites);
  // A screenshot kept as the test's artifact (build/test-artifacts/).
  std::string png = artifacts_dir() + "/timeline.png";
  std::filesystem::remove(png);
  Result shot = run({"chromium", "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                     "--window-size=1400,600", "--virtual-time-budget=10000", "--screenshot=" + png,
                     "file://" + page + "#select=" + leaked_key},
                    {.timeout_seconds = 120});
  EXPECT_EQ(shot.exit_code, 0) << describe(shot);
  EXPECT_GT(std::filesystem::file_size(png), 1000u);
}

TEST(PictureRun, PrometheusTextHasTheRunsValues) {
  TempDir out;
  std::string file = out.file("connleak.prom");
  render("prometheus", file);
  std::string text = read_file(file);
  EXPECT_EQ(test_prometheus::check(text), "") << text;
  if (have("promtool")) {
    // Exit 1 is a parse error. Exit 3 is its linter, which objects to a gauge
    // ending in _count: that name is OpenTelemetry's db.client.connection.count
    // mapped the way its Prometheus exporter maps it, so that one is expected.
    Result check = run({"/bin/sh", "-c", "promtool check metrics < " + file});
    EXPECT_TRUE(check.exit_code == 0 || check.exit_code == 3) << describe(check);
    for (const std::string& problem : lines(check.err + check.out))
      EXPECT_EQ(problem,
                "db_client_connection_count non-histogram and non-summary metrics should not "
                "have \"_count\" suffix")
          << describe(check);
  }
  const auto& env = pg_env();
  std::string pool = "c#1 host=127.0.0.1 user=app dbname=connleak";
  for (const std::string& line :
       {"db_client_connection_count{pool_name=\"" + pool + "\",state=\"used\"} 2",
        "db_client_connection_count{pool_name=\"" + pool + "\",state=\"idle\"} 1",
        "db_client_connection_max{pool_name=\"" + pool + "\"} 5",
        "db_client_connection_use_time_seconds_count{pool_name=\"" + pool + "\"} 3",
        "connleak_pool_exhausted_total{pool_name=\"" + pool + "\"} 1",
        "db_client_connection_timeouts_total{pool_name=\"" + pool + "\"} 1",
        "connleak_connections_open{library=\"libpq\",target=\"host=127.0.0.1 port=" +
            env.at("CONNLEAK_TEST_PG_PORT") + " dbname=connleak\"} 4",
        std::string("connleak_leaked_total 1"), std::string("connleak_checkouts_leaked_total 2"),
        std::string("connleak_connections_opened_total 4")})
    EXPECT_NE(text.find(line + "\n"), std::string::npos) << line << "\n" << text;
}

namespace {

// Reads `file` until `line` is in it: the shim's thread rewrites it every
// metrics_interval, so the test waits for the state it caused, with a deadline.
std::string wait_for_metric(const std::string& file, const std::string& line) {
  std::string text;
  for (int i = 0; i < 600; ++i) {
    if (std::filesystem::exists(file)) {
      text = read_file(file);
      if (text.find(line + "\n") != std::string::npos) return text;
    }
    usleep(50'000);  // polling a file for a condition, not timing anything
  }
  ADD_FAILURE() << "no '" << line << "' in " << file << " within 30 s:\n" << text;
  return text;
}

std::string next_ok(Process& p) {
  for (;;) {
    std::string line = p.read_line();
    if (line.rfind("ok ", 0) == 0) return line;
  }
}

}  // namespace

TEST(PictureRun, LiveMetricsFileFollowsTheRunningProgram) {
  TempDir dir;
  std::string file = dir.file("connleak.prom");
  Process p({cli_path(), "run", "--metrics-file", file, "--", bin("pool_host")},
            {.env = {{"CONNLEAK_OPTIONS", "metrics_interval=100ms"}}, .pg = true});
  for (const char* command : {"open 3", "pool 5", "open 0", "open 1", "open 2", "leak 1"}) {
    p.write_stdin(std::string(command) + "\n");
    EXPECT_EQ(next_ok(p), std::string("ok ") + command);
  }
  // While it runs: 3 pooled connections, 1 of them checked out; 4 open in all.
  std::string pool = "c#1 host=127.0.0.1 user=app dbname=connleak";
  std::string live = wait_for_metric(
      file, "db_client_connection_count{pool_name=\"" + pool + "\",state=\"used\"} 1");
  EXPECT_NE(live.find("db_client_connection_count{pool_name=\"" + pool + "\",state=\"idle\"} 2\n"),
            std::string::npos)
      << live;
  EXPECT_NE(live.find("connleak_connections_open{library=\"libpq\",target=\"host=127.0.0.1 port=" +
                      pg_env().at("CONNLEAK_TEST_PG_PORT") + " dbname=postgres\"} 4\n"),
            std::string::npos)
      << live;
  EXPECT_NE(live.find("connleak_leaked_total 0\n"), std::string::npos) << live;
  EXPECT_EQ(test_prometheus::check(live), "") << live;
  struct stat st {};
  ASSERT_EQ(stat(file.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);  // a scraper runs as another user
  // At exit the file is rewritten from the exit report: the leaks are its last word.
  p.write_stdin("exit\n");
  Result done = p.wait();
  EXPECT_EQ(done.exit_code, 23) << describe(done);
  std::string last = read_file(file);
  EXPECT_NE(last.find("connleak_leaked_total 1\n"), std::string::npos) << last;
  EXPECT_NE(last.find("connleak_checkouts_leaked_total 1\n"), std::string::npos) << last;
  EXPECT_EQ(test_prometheus::check(last), "") << last;
  // No temporary left beside it.
  std::size_t entries = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
    (void)e;
    ++entries;
  }
  EXPECT_EQ(entries, 1u);
}
