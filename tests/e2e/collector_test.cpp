// Threshold alerts, follow-ups, dumps and the public API, with a long-running
// program driven over pipes (programs/pq_interactive.c).
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <regex>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

std::string interactive() {
  return bin("pq_interactive");
}

std::string handle_of(const Session& s, int i) {
  std::smatch m;
  std::regex re("handle " + std::to_string(i) + " (0x[0-9a-f]+)");
  std::string out = s.out();
  return std::regex_search(out, m, re) ? m[1].str() : "<none>";
}

TEST(Collector, LifetimeAlertOnceThenOneFollowUp) {
  Session s({interactive()}, {.options = "threshold=300ms"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.wait_err("flagged lifetime after")) << s.err();
  // A second alert needs at least one more threshold of ticks: had connection 0
  // been re-alerted in those rounds, the count below would be higher.
  ASSERT_TRUE(s.command("open 1"));
  ASSERT_TRUE(s.wait_err("flagged lifetime after", 2)) << s.err();
  ASSERT_TRUE(s.command("close 0"));
  ASSERT_TRUE(s.wait_err("previously flagged connection id")) << s.err();
  ASSERT_TRUE(s.command("close 1"));
  ASSERT_TRUE(s.wait_err("previously flagged connection id", 2)) << s.err();
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "open for more than 0.3s (threshold)"), 2) << r.err;
  EXPECT_NE(r.err.find("open_connection_for_test"), std::string::npos) << r.err;
  EXPECT_EQ(count(r.err, "previously flagged connection id"), 2) << r.err;
  // Closed, but flagged: still in the report, so CI can fail on it.
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(r.report->at("summary").at("flagged"), 2);
  EXPECT_EQ(r.report->at("summary").at("leaked"), 0);
  for (const json& c : with_status(*r.report, "closed")) {
    ASSERT_EQ(c.at("alerts").size(), 1u);
    EXPECT_EQ(c.at("alerts").at(0).at("kind"), "lifetime");
    EXPECT_GE(c.at("alerts").at(0).at("after_seconds").get<double>(), 0.3);
  }
}

TEST(Collector, IdleInTransactionAlertNamesWhereTheTransactionBegan) {
  Session s({interactive()}, {.options = "txn_threshold=300ms"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("begin 0"));
  // The block's last line ends the wait: the whole block has been written.
  ASSERT_TRUE(s.wait_err("flagged idle_in_transaction after")) << s.err();
  EXPECT_NE(s.err().find("inside one transaction for more than 0.3s (txn_threshold)"),
            std::string::npos);
  const std::string alert = s.err();
  auto began = alert.find("the transaction began at:");
  auto opened = alert.find("the connection was opened at:");
  ASSERT_NE(began, std::string::npos);
  ASSERT_NE(opened, std::string::npos);
  // The transaction's stack names the function that sent BEGIN; the
  // connection's names the one that opened it.
  EXPECT_NE(alert.substr(began, opened - began).find("begin_transaction_here"), std::string::npos)
      << alert;
  EXPECT_NE(alert.substr(opened).find("open_connection_for_test"), std::string::npos) << alert;
  EXPECT_NE(alert.find("server id "), std::string::npos) << alert;
  ASSERT_TRUE(s.command("commit 0"));
  ASSERT_TRUE(s.wait_err("the transaction flagged on connection id")) << s.err();
  ASSERT_TRUE(s.command("close 0"));
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u) << describe(r);
  EXPECT_EQ(closed[0].at("alerts").at(0).at("kind"), "idle_in_transaction");
  EXPECT_TRUE(names_function(closed[0].at("transaction").at("began").at("native"),
                             "begin_transaction_here"));
}

// The pool-safe signal: connections idle between checkouts hold no transaction.
TEST(Collector, IdlePooledConnectionsNeverAlert) {
  Session s({interactive()}, {.options = "txn_threshold=200ms"});
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(s.command("open " + std::to_string(i)));
    ASSERT_TRUE(s.command("query " + std::to_string(i)));
  }
  // A canary held in a transaction three times in a row: each alert takes at
  // least one threshold, so the pool sits idle for over 3x the threshold.
  ASSERT_TRUE(s.command("open 3"));
  for (int round = 1; round <= 3; ++round) {
    ASSERT_TRUE(s.command("begin 3"));
    ASSERT_TRUE(s.wait_err("flagged idle_in_transaction after", round)) << s.err();
    ASSERT_TRUE(s.command("commit 3"));
  }
  for (int i = 0; i < 4; ++i) ASSERT_TRUE(s.command("close " + std::to_string(i)));
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(txn_threshold)"), 3) << r.err;
  for (int i = 0; i < 3; ++i) EXPECT_EQ(r.err.find(handle_of(s, i)), std::string::npos) << r.err;
  EXPECT_EQ(r.report->at("summary").at("flagged"), 1);  // the canary only
}

TEST(Collector, SignalDumpListsOpenConnectionsAndTheProgramGoesOn) {
  Session s({interactive()}, {.options = "dump_signal=12:control=1"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("open 1"));
  ASSERT_TRUE(s.command("begin 1"));
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  auto dump = read_report(s.report_dir() + "/connleak." + std::to_string(s.pid()) + ".1.json");
  ASSERT_TRUE(dump);
  EXPECT_EQ(dump->at("trigger"), "signal");
  auto open = with_status(*dump, "open");
  ASSERT_EQ(open.size(), 2u);
  EXPECT_EQ(open[0].at("transaction").at("state"), "idle");
  EXPECT_EQ(open[1].at("transaction").at("state"), "in_transaction");
  EXPECT_TRUE(
      names_function(open[1].at("transaction").at("began").at("native"), "begin_transaction_here"));
  ASSERT_TRUE(s.command("query 0"));  // still running, still serving
  s.send("exit");
  Result r = s.finish();
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("ok query 0\nok exit"), std::string::npos) << r.out;
  EXPECT_EQ(r.report->at("summary").at("leaked"), 2);
}

TEST(Collector, ProgramsOwnDumpSignalHandlerWins) {
  Session s({interactive()}, {.options = "dump_signal=12:control=1"});
  ASSERT_TRUE(s.command("install_usr2"));
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.wait_err("handles signal 12 itself; dumps on that signal are off")) << s.err();
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_out("app got USR2")) << s.out();
  ASSERT_TRUE(s.command("close 0"));
  s.send("exit");
  Result r = s.finish();
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "dumps on that signal are off"), 1) << r.err;
  EXPECT_EQ(r.err.find("dump (signal)"), std::string::npos) << r.err;
  EXPECT_EQ(r.files.size(), 1u);  // the exit report only
}

TEST(Collector, DumpSignalZeroLeavesTheSignalAlone) {
  Session s({interactive()}, {.options = "dump_signal=0"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);  // default action: the program dies
  Result r = s.finish();
  EXPECT_EQ(r.signal, SIGUSR2) << describe(r);
}

TEST(Collector, IgnoredConnectionNeverAlertsAndIsNotALeak) {
  Session s({interactive()}, {.options = "threshold=300ms"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("ignore 0"));
  ASSERT_TRUE(s.command("open 1"));
  ASSERT_TRUE(s.wait_err("flagged lifetime after")) << s.err();
  ASSERT_TRUE(s.command("dump"));  // a full round later: 0, older than 1, would have alerted first
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(threshold)"), 1) << r.err;
  EXPECT_EQ(r.err.find(handle_of(s, 0)), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(handle_of(s, 1)), std::string::npos) << r.err;
  EXPECT_EQ(r.report->at("summary").at("leaked"), 1);
  EXPECT_EQ(r.report->at("summary").at("ignored"), 1);
}

TEST(Collector, PublicDumpWritesANumberedRequestDump) {
  Session s({interactive()});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("dump"));
  ASSERT_TRUE(s.command("dump"));
  auto second = read_report(s.report_dir() + "/connleak." + std::to_string(s.pid()) + ".2.json");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->at("trigger"), "request");
  EXPECT_EQ(with_status(*second, "open").size(), 1u);
  EXPECT_NE(s.err().find("connleak: dump (request)"), std::string::npos);
  ASSERT_TRUE(s.command("close 0"));
  s.send("exit");
  EXPECT_EQ(s.finish().exit_code, 0);
}

// What `connleak dump PID` speaks: the abstract socket "\0connleak.<pid>".
TEST(Collector, ControlSocketAnswersWithTheDumpJson) {
  Session s({interactive()}, {.options = "dump_signal=12:control=1"});
  ASSERT_TRUE(s.command("open 0"));
  int fd = socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "connleak." + std::to_string(s.pid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), len), 0) << std::strerror(errno);
  ASSERT_EQ(write(fd, "dump\n", 5), 5);
  std::string reply;
  char buf[4096];
  for (ssize_t n; (n = read(fd, buf, sizeof buf)) > 0;)
    reply.append(buf, static_cast<std::size_t>(n));
  close(fd);
  json dump = json::parse(reply);
  EXPECT_EQ(dump.at("trigger"), "request");
  EXPECT_EQ(dump.at("pid"), s.pid());
  EXPECT_EQ(with_status(dump, "open").size(), 1u);
  ASSERT_TRUE(s.command("close 0"));
  s.send("exit");
  EXPECT_EQ(s.finish().exit_code, 0);
}

TEST(Collector, ForkChildReportsInheritedConnectionsAsTheParents) {
  Session s({interactive()});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("fork_child"));
  std::smatch m;
  std::string out = s.out();
  ASSERT_TRUE(std::regex_search(out, m, std::regex("child (\\d+)")));
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.report->at("summary").at("leaked"), 1);  // the parent's leak
  auto child = read_report(s.report_dir() + "/connleak." + m[1].str() + ".json");
  ASSERT_TRUE(child) << "no report from the child";
  EXPECT_EQ(child->at("summary").at("inherited"), 1);  // the parent's, not the child's leak
  EXPECT_EQ(child->at("summary").at("opened"), 1);
  EXPECT_EQ(child->at("summary").at("leaked"), 1);
  auto leaked = with_status(*child, "leaked");
  ASSERT_EQ(leaked.size(), 1u);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "open_connection_in_child"));
  EXPECT_EQ(child->at("ppid"), s.pid());
}

// suppressions= in the shim: a suppressed connection never alerts and is left
// out of the report, and the LSan table says which suppression was used.
TEST(Collector, SuppressedConnectionsNeverAlertAndAreNotReported) {
  std::string supp = "/tmp/connleak-e2e-supp-" + std::to_string(getpid());
  { std::ofstream(supp) << "# opened on purpose\nleak:open_connection_for_test\n"; }
  Session s({interactive()}, {.options = "threshold=200ms:suppressions=" + supp});
  ASSERT_TRUE(s.command("open 0"));
  // Younger and from another site: its alert proves the watchdog has looked
  // at connection 0 too, which is older.
  ASSERT_TRUE(s.command("open_elsewhere 1"));
  ASSERT_TRUE(s.wait_err("flagged lifetime after")) << s.err();
  ASSERT_TRUE(s.command("close 1"));
  s.send("exit");
  Result r = s.finish();
  std::remove(supp.c_str());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(threshold)"), 1) << r.err;
  EXPECT_EQ(r.err.find(handle_of(s, 0)), std::string::npos) << r.err;
  EXPECT_EQ(r.report->at("summary").at("leaked"), 0) << describe(r);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u);  // connection 1: flagged, then closed
  EXPECT_TRUE(names_function(closed[0].at("acquired").at("native"), "open_from_elsewhere"));
  ASSERT_TRUE(r.report->contains("suppressions"));
  EXPECT_EQ(r.report->at("suppressions").at(0).at("suppression"), "leak:open_connection_for_test");
  EXPECT_EQ(r.report->at("suppressions").at(0).at("hits"), 1);
  EXPECT_NE(r.err.find("Suppressions used:"), std::string::npos) << r.err;
}

TEST(Collector, UnreadableSuppressionsFileIsOneWarning) {
  Result r =
      run({bin("pq_scenarios"), "leak"}, {.options = "suppressions=/nonexistent/connleak.supp"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "ignoring option 'suppressions=/nonexistent/connleak.supp'"), 1) << r.err;
  EXPECT_EQ(r.report->at("summary").at("leaked"), 1);
}

}  // namespace
}  // namespace e2e

namespace e2e {
namespace {

// Activity: each connection says what it last did; literals never come out;
// idle_threshold flags the idle connection inside a transaction and not the
// one whose statement is still running (the canary and the quiet one run in
// the same program).
TEST(Activity, IdleAlertShowsLastStatementAndNoSecretAnywhere) {
  Session s({interactive()}, {.options = "idle_threshold=300ms"});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("open 1"));
  ASSERT_TRUE(s.command("open 2"));
  ASSERT_TRUE(s.command("secrets 2"));
  ASSERT_TRUE(s.command("prepared 2"));
  ASSERT_TRUE(s.command("pipeline 1"));
  ASSERT_TRUE(s.command("sendlong 1"));  // busy inside a transaction: never idle
  ASSERT_TRUE(s.command("begin 0"));     // idle inside a transaction: the canary
  ASSERT_TRUE(s.wait_err("(idle_threshold)")) << s.err();
  ASSERT_TRUE(s.command("dump"));
  ASSERT_TRUE(s.wait_err("connleak: dump")) << s.err();
  s.send("exit");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(idle_threshold)"), 1) << r.err;
  // The alert, the dump and the exit report each list connection 0 as
  // flagged; the busy connection (id 2) never is.
  EXPECT_EQ(count(r.err, "(id 1, thread"), 3) << r.err;
  EXPECT_EQ(count(r.err, "flagged idle after"), 3) << r.err;
  EXPECT_FALSE(std::regex_search(r.err, std::regex("id 2, [^\n]*flagged"))) << r.err;
  EXPECT_NE(r.err.find("last: select ? (2 statements, idle "), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("hunter2"), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find("hunter2"), std::string::npos) << r.out;
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(r.report->dump().find("hunter2"), std::string::npos);
  std::map<std::string, json> by_last;
  for (const json& c : r.report->at("connections"))
    if (c.contains("last_statement")) by_last[c.at("last_statement").get<std::string>()] = c;
  // Connection 0: BEGIN, select 1; flagged.
  ASSERT_TRUE(by_last.count("select ?")) << r.report->dump(2);
  EXPECT_EQ(by_last["select ?"].at("statements"), 2);
  EXPECT_TRUE(by_last["select ?"].at("last_used_at").is_string());
  EXPECT_GE(by_last["select ?"].at("idle_seconds").get<double>(), 0.3);
  // Connection 1: two pipelined statements, BEGIN, then the running one.
  ASSERT_TRUE(by_last.count("SELECT pg_sleep(?)")) << r.report->dump(2);
  EXPECT_EQ(by_last["SELECT pg_sleep(?)"].at("statements"), 4);
  EXPECT_EQ(by_last["SELECT pg_sleep(?)"].at("busy"), true);
  // Connection 2: five literal-laden statements, then one prepared execution
  // named by its text.
  ASSERT_TRUE(by_last.count("SELECT $1::int + ? AS v, ?")) << r.report->dump(2);
  EXPECT_EQ(by_last["SELECT $1::int + ? AS v, ?"].at("statements"), 5);
}

}  // namespace
}  // namespace e2e
