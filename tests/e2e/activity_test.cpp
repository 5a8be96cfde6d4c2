// Activity (issue 15) through real drivers against the real servers: the
// MySQL C API (text queries and server-side prepared statements through
// libmariadb), asyncpg (simple Query and Parse/Bind read from the socket's
// bytes) and aiomysql (COM_QUERY read from the socket's bytes); a closed
// record keeps its activity. Every statement carries a literal "hunter2"
// that must reach no output: stderr, the JSON report, dumps, and the SARIF,
// JUnit and text forms `connleak report` renders from them.
#include <gtest/gtest.h>
#include <signal.h>

#include <fstream>
#include <map>
#include <regex>
#include <sstream>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

constexpr const char* kSecret = "hunter2";

json field(const json& c, const std::string& path) {
  json::json_pointer p(path);
  return c.contains(p) ? c.at(p) : json();
}

std::int64_t printed(const std::string& out, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("(^|\n)" + key + "[ =](\\d+)\n"))) return -1;
  return std::stoll(m[2]);
}

const json* by_server_id(const std::vector<json>& conns, std::int64_t id) {
  for (const json& c : conns)
    if (field(c, "/server_id") == id) return &c;
  return nullptr;
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

// The program's own output may echo nothing either: stdout and stderr, every
// file left in the report directory (reports and dumps), and what
// `connleak report` renders from them in each format.
void expect_secret_nowhere(const Result& r) {
  EXPECT_EQ(r.err.find(kSecret), std::string::npos) << r.err;
  ASSERT_FALSE(r.files.empty()) << describe(r);
  for (const std::string& f : r.files)
    EXPECT_EQ(slurp(r.report_dir + "/" + f).find(kSecret), std::string::npos) << f;
  for (const char* format : {"text", "json", "sarif", "junit"}) {
    Result rendered =
        run({CONNLEAK_CLI_PATH, "report", "--format", format, r.report_dir}, {.preload = false});
    EXPECT_FALSE(rendered.out.empty()) << format << ": " << describe(rendered);
    EXPECT_EQ(rendered.out.find(kSecret), std::string::npos) << format << ": " << rendered.out;
    EXPECT_EQ(rendered.err.find(kSecret), std::string::npos) << format << ": " << rendered.err;
  }
}

// Statement count, normalized last statement, and the idle time and last use.
void expect_activity(const json& c, std::uint64_t statements, const std::string& last) {
  EXPECT_EQ(field(c, "/statements"), statements) << c.dump(2);
  EXPECT_EQ(field(c, "/last_statement"), last) << c.dump(2);
  EXPECT_TRUE(field(c, "/idle_seconds").is_number()) << c.dump(2);
  EXPECT_GE(field(c, "/idle_seconds").get<double>(), 0.0) << c.dump(2);
  EXPECT_TRUE(field(c, "/last_used_at").is_string()) << c.dump(2);
}

TEST(Activity, MysqlCApiTextAndPreparedStatementsNormalizedNoSecret) {
  Result r = run({bin("mysql_scenarios"), "activity"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  const json* text = by_server_id(leaked, printed(r.out, "text_thread_id"));
  const json* prep = by_server_id(leaked, printed(r.out, "prepared_thread_id"));
  ASSERT_TRUE(text && prep) << r.out << r.report->dump(2);
  EXPECT_EQ(field(*text, "/library"), "mysql");
  // mysql_real_query twice and mysql_query once: MySQL's "..." is a literal too.
  expect_activity(*text, 3, "SELECT @k = ? AND ? > ?, ?, ?");
  // Two executions of the prepared statement, named by its text (the prepare
  // is not a statement run).
  expect_activity(*prep, 2, "SELECT ? + ?, ?");
  EXPECT_NE(r.err.find("last: SELECT @k = ? AND ? > ?, ?, ? (3 statements, idle "),
            std::string::npos)
      << r.err;
  // The dump the program wrote before exiting says the same.
  auto dump = read_report(r.report_dir + "/connleak." + std::to_string(r.pid) + ".1.json");
  ASSERT_TRUE(dump) << describe(r);
  const auto dumped_open = with_status(*dump, "open");
  const json* dumped = by_server_id(dumped_open, printed(r.out, "prepared_thread_id"));
  ASSERT_TRUE(dumped) << dump->dump(2);
  expect_activity(*dumped, 2, "SELECT ? + ?, ?");
  expect_secret_nowhere(r);
}

// statements=0 turns the feature off: the same program's two leaks are still
// reported (the canary: tracking itself stays on), but no record carries a
// statement count, a last statement or an idle time, and no "last:" line is
// printed.
TEST(Activity, StatementsZeroRecordsNoActivityButStillFindsTheLeaks) {
  Result r = run({bin("mysql_scenarios"), "activity"}, {.options = "statements=0"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  for (const json& c : leaked) {
    EXPECT_FALSE(c.contains("statements")) << c.dump(2);
    EXPECT_FALSE(c.contains("last_statement")) << c.dump(2);
    EXPECT_FALSE(c.contains("idle_seconds")) << c.dump(2);
    EXPECT_FALSE(c.contains("last_used_at")) << c.dump(2);
  }
  EXPECT_EQ(r.err.find("last: "), std::string::npos) << r.err;
  auto dump = read_report(r.report_dir + "/connleak." + std::to_string(r.pid) + ".1.json");
  ASSERT_TRUE(dump) << describe(r);
  for (const json& c : with_status(*dump, "open")) EXPECT_FALSE(c.contains("last_statement"));
  expect_secret_nowhere(r);
}

// A Python driver left running until the test has taken a dump.
Result run_until_dumped(const std::string& name, json& dump) {
  Session s({"/usr/bin/python3", script(name)}, {.options = "dump_signal=12"});
  EXPECT_TRUE(s.wait_out("ready\n")) << s.err();
  EXPECT_EQ(kill(s.pid(), SIGUSR2), 0);
  EXPECT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  auto d = read_report(s.report_dir() + "/connleak." + std::to_string(s.pid()) + ".1.json");
  if (d) dump = *d;
  s.send("go");
  return s.finish();
}

TEST(Activity, AsyncpgSimpleAndExtendedProtocolFromTheWireNoSecret) {
  json dump;
  Result r = run_until_dumped("activity_asyncpg.py", dump);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  ASSERT_FALSE(dump.is_null()) << describe(r);
  const std::int64_t simple_pid = printed(r.out, "simple");
  const std::int64_t extended_pid = printed(r.out, "extended");
  // While open (the dump) and after CPython closed them at exit (the report:
  // leaked, closed by the interpreter, the activity kept with the record).
  for (const auto& [doc, status] : {std::pair{&dump, "open"}, std::pair{&*r.report, "leaked"}}) {
    auto conns = with_status(*doc, status);
    ASSERT_EQ(conns.size(), 2u) << doc->dump(2);
    const json* simple = by_server_id(conns, simple_pid);
    const json* extended = by_server_id(conns, extended_pid);
    ASSERT_TRUE(simple && extended) << r.out << doc->dump(2);
    EXPECT_EQ(field(*simple, "/protocol"), "postgresql");
    // Simple Query messages: the SET and the SELECT (asyncpg's own
    // introspection at connect is not sent: it is lazy).
    expect_activity(*simple, 2, "SELECT md5(?), ?");
    // Parse + Bind, then Bind of the cached statement: two executions.
    expect_activity(*extended, 2, "SELECT $1::int + ? AS v, ?");
  }
  for (const json& c : with_status(*r.report, "leaked"))
    EXPECT_EQ(field(c, "/closed_by"), "interpreter_exit") << c.dump(2);
  expect_secret_nowhere(r);
}

TEST(Activity, AiomysqlComQueryFromTheWireNoSecret) {
  json dump;
  Result r = run_until_dumped("activity_aiomysql.py", dump);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  ASSERT_FALSE(dump.is_null()) << describe(r);
  const std::int64_t id = printed(r.out, "server_id");
  for (const auto& [doc, status] : {std::pair{&dump, "open"}, std::pair{&*r.report, "leaked"}}) {
    auto conns = with_status(*doc, status);
    ASSERT_EQ(conns.size(), 1u) << doc->dump(2);
    const json* c = by_server_id(conns, id);
    ASSERT_TRUE(c) << r.out << doc->dump(2);
    EXPECT_EQ(field(*c, "/protocol"), "mysql");
    // The two COM_QUERYs (autocommit=True is the server's default: aiomysql
    // sends no SET autocommit at connect).
    expect_activity(*c, 2, "SELECT ? = @k, ? AS n");
  }
  expect_secret_nowhere(r);
}

// A connection the program closed keeps its activity in the report when the
// report still shows it (it was flagged): idle until its close.
TEST(Activity, ClosedFlaggedRecordKeepsItsActivity) {
  Session s({bin("pq_interactive")}, {.options = "idle_threshold=300ms"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("open 1"));
  ASSERT_TRUE(s.command("begin 0"));  // idle inside a transaction: flagged
  ASSERT_TRUE(s.command("query 1"));  // idle, no transaction: never flagged
  ASSERT_TRUE(s.wait_err("(idle_threshold)")) << s.err();
  ASSERT_TRUE(s.command("commit 0"));
  ASSERT_TRUE(s.command("close 0"));
  ASSERT_TRUE(s.wait_err("previously flagged connection id")) << s.err();
  ASSERT_TRUE(s.command("close 1"));
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(count(r.err, "(idle_threshold)"), 1) << r.err;
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u) << r.report->dump(2);
  EXPECT_EQ(field(closed[0], "/alerts/0/kind"), "idle");
  // BEGIN, select 1, COMMIT.
  expect_activity(closed[0], 3, "COMMIT");
  EXPECT_FALSE(closed[0].contains("busy")) << closed[0].dump(2);
  // The exit report's line for it, then what it last did (idle until its close).
  EXPECT_NE(r.err.find(") was closed\n    last: COMMIT (3 statements, idle "), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace e2e
