// Runtimes other than CPython that load the client libraries RTLD_LOCAL or
// speak the protocol themselves (issue 13): programs must keep working under
// the shim, and the counts must be the program's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

std::string perl_script(const std::string& name) {
  return std::string(CONNLEAK_E2E_PERL_DIR) + "/" + name;
}

// Every hooked MySQL / libpq entry point, through a module loaded RTLD_LOCAL:
// the same output with and without the shim. Before the fix, libmariadb's
// mysql_query (a tail jump to mysql_real_query) returned 1 under the shim.
void expect_same_with_and_without_shim(const std::string& which) {
  RunOptions plain;
  plain.preload = false;
  Result without = run({bin("local_client_host"), CONNLEAK_E2E_LOCAL_MODULE, which}, plain);
  ASSERT_EQ(without.exit_code, 0) << describe(without);
  Result with = run({bin("local_client_host"), CONNLEAK_E2E_LOCAL_MODULE, which});
  ASSERT_EQ(with.exit_code, 0) << describe(with);
  EXPECT_EQ(with.out, without.out) << describe(with);
  EXPECT_EQ(with.err.find("cannot find the real"), std::string::npos) << with.err;
  EXPECT_EQ(summary(with, "leaked"), 0u) << describe(with);
  EXPECT_EQ(summary(with, "unknown_closes"), 0u) << describe(with);
  EXPECT_EQ(summary(with, "opened"), summary(with, "closed")) << describe(with);
}

TEST(RtldLocal, EveryMysqlEntryPointBehavesAsWithoutTheShim) {
  mysql("PORT");
  expect_same_with_and_without_shim("mysql");
  // The drive really exercised the library: queries, stmt, reconnect,
  // non-blocking.
  RunOptions plain;
  plain.preload = false;
  Result r = run({bin("local_client_host"), CONNLEAK_E2E_LOCAL_MODULE, "mysql"}, plain);
  EXPECT_NE(r.out.find("mysql_query rc=0 value=42"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mariadb_stmt_execute_direct rc=0 fetch=0 value=6"), std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("after reconnect mysql_query rc=0 value=10"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("mysql_real_query_start rc=0 value=11"), std::string::npos) << r.out;
}

TEST(RtldLocal, EveryLibpqEntryPointBehavesAsWithoutTheShim) {
  expect_same_with_and_without_shim("pq");
  RunOptions plain;
  plain.preload = false;
  Result r = run({bin("local_client_host"), CONNLEAK_E2E_LOCAL_MODULE, "pq"}, plain);
  EXPECT_NE(r.out.find("PQexec value=42"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("copied value=1"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("PQresetPoll ok=1"), std::string::npos) << r.out;
}

// libuv's way of closing: syscall(SYS_close) and syscall(SYS_close_range).
TEST(RawSyscall, ClosesThroughSyscallAreSeen) {
  Result r = run({bin("raw_syscall_close")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("sys_close=0 sys_close_range=0 kept=1 again=-1"), std::string::npos)
      << r.out;
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("library"), "socket") << leaked[0].dump(2);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "kept_until_exit"))
      << leaked[0].dump(2);
  // Not a PHP process: no PHP stack at all (not even an empty one).
  EXPECT_FALSE(leaked[0].at("acquired").contains("php")) << leaked[0].dump(2);
}

// The programs of this file share one shape: three connections, two closed
// by the program, one kept until exit. What every such run must show.
void expect_three_opened_one_leaked(const Result& r, const std::string& library) {
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  EXPECT_EQ(r.err.find("cannot find the real"), std::string::npos) << r.err;
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("library"), library) << leaked[0].dump(2);
}

// No output of the run names the password.
void expect_no_password(const Result& r, const std::string& password) {
  EXPECT_EQ(r.out.find(password), std::string::npos);
  EXPECT_EQ(r.err.find(password), std::string::npos);
  EXPECT_EQ(r.report_text.find(password), std::string::npos);
}

// Node.js drivers that speak the protocol themselves; libuv closes their
// sockets with syscall(SYS_close). Installed by scripts/node-deps.sh (fixture),
// which leaves DIR/unavailable saying why when it could not. The tests skip
// only when node or npm is absent; an install that failed is a failure.
std::string node_unavailable() {
  std::ifstream unavailable{std::string(CONNLEAK_E2E_NODE_DIR) + "/unavailable"};
  if (!unavailable) return "";
  std::stringstream why;
  why << unavailable.rdbuf();
  return why.str();
}

std::string node_missing() {
  if (access("/usr/bin/node", X_OK) != 0 && access("/usr/bin/nodejs", X_OK) != 0)
    return "Node.js is not installed (scripts/install-deps.sh)";
  if (node_unavailable().rfind("npm is not installed", 0) == 0)
    return "npm is not installed (scripts/install-deps.sh)";
  return "";
}

Result run_node(const std::string& name) {
  if (std::string why = node_unavailable(); !why.empty())
    throw std::runtime_error("Node.js drivers not installed: " + why);
  RunOptions o;
  o.env = {{"NODE_PATH", std::string(CONNLEAK_E2E_NODE_DIR) + "/node_modules"}};
  return run({"node", std::string(CONNLEAK_E2E_NODE_SRC) + "/" + name}, o);
}

void expect_node_program(const std::string& name, const std::string& protocol,
                         const std::string& password) {
  Result r = run_node(name);
  expect_three_opened_one_leaked(r, "socket");
  if (r.report)
    for (const json& c : with_status(*r.report, "leaked"))
      EXPECT_EQ(c.value("protocol", ""), protocol) << c.dump(2);
  expect_no_password(r, password);
}

TEST(Node, PgThreeOpenedTwoClosedOneLeaked) {
  if (std::string why = node_missing(); !why.empty()) GTEST_SKIP() << why;
  expect_node_program("pg_leak.js", "postgresql", pg("APP_PASSWORD"));
}

TEST(Node, Mysql2ThreeOpenedTwoClosedOneLeaked) {
  if (std::string why = node_missing(); !why.empty()) GTEST_SKIP() << why;
  expect_node_program("mysql2_leak.js", "mysql", mysql("PASSWORD"));
}

// Activity from the wire for MySQL server-side prepared statements (issue 15):
// COM_STMT_PREPARE names the statement, each COM_STMT_EXECUTE counts as one
// statement run; literals and bound values reach no output.
TEST(Node, Mysql2PreparedStatementsActivityFromTheWire) {
  if (std::string why = node_missing(); !why.empty()) GTEST_SKIP() << why;
  Result r = run_node("mysql2_prepared.js");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_NE(r.out.find("done\n"), std::string::npos) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& c = leaked[0];
  EXPECT_EQ(c.value("protocol", ""), "mysql") << c.dump(2);
  EXPECT_EQ(r.out.find("server_id " + std::to_string(c.value("server_id", -1)) + "\n") !=
                std::string::npos,
            true)
      << r.out << c.dump(2);
  // SET, then two executions of the prepared statement (the prepare itself
  // runs nothing).
  EXPECT_EQ(c.value("statements", 0), 3) << c.dump(2);
  EXPECT_EQ(c.value("last_statement", ""), "SELECT ? + ? AS v, ? AS s, ? AS b") << c.dump(2);
  EXPECT_TRUE(c.contains("idle_seconds")) << c.dump(2);
  expect_no_password(r, "hunter2");
}

// Perl DBI (one program, tests/e2e/perl/dbi_leak.pl, for both DBD drivers):
// three connections from three subs, two disconnected, one in a global until
// exit, which Perl's global destruction closes (perl_destruct).
void expect_perl_program(const std::string& driver, const std::string& library,
                         const std::string& password) {
  Result r = run({"/usr/bin/perl", perl_script("dbi_leak.pl"), driver});
  expect_three_opened_one_leaked(r, library);
  if (r.report)
    for (const json& c : with_status(*r.report, "leaked"))
      EXPECT_EQ(c.at("closed_by"), "runtime_exit") << c.dump(2);
  // No Perl frames yet (issue 13 point 5): the native stack names the driver.
  expect_no_password(r, password);
}

TEST(Perl, DbdMariadbWorksAndTheGlobalKeptUntilExitIsTheOneLeak) {
  expect_perl_program("mariadb", "mysql", mysql("PASSWORD"));
}

TEST(Perl, DbdPgWorksAndTheGlobalKeptUntilExitIsTheOneLeak) {
  expect_perl_program("pg", "libpq", pg("APP_PASSWORD"));
}

// PHP programs (tests/e2e/php): each connection is opened by its own function
// (report_totals, Cache::refresh, open_session), on the line marked
// "CONNECT-<function>".
std::string php_script(const std::string& name) {
  return std::string(CONNLEAK_E2E_SCRIPTS_DIR) + "/php/" + name;
}

bool php_frame(const json& frames, const std::string& function, const std::string& file, int line) {
  for (const json& f : frames)
    if (f.at("function") == function && f.at("file") == file && f.at("line") == line) return true;
  return false;
}

// The PHP stack of a connection opened by `function` through `driver_call`
// (the internal function, innermost), at its marked line, from the script's
// top level at the line calling `function`.
void expect_php_stack(const json& stack, const std::string& script, const std::string& function,
                      const std::string& driver_call, const std::string& top_call) {
  ASSERT_TRUE(stack.contains("php")) << stack.dump(2);
  const json& php = stack.at("php");
  ASSERT_GE(php.size(), 3u) << stack.dump(2);
  const int line = line_of(script, "CONNECT-" + function);
  ASSERT_GT(line, 0) << script;
  EXPECT_EQ(php[0].at("function"), driver_call) << php.dump(2);
  EXPECT_EQ(php[0].at("file"), script) << php.dump(2);
  EXPECT_EQ(php[0].at("line"), line) << php.dump(2);
  EXPECT_EQ(php[1].at("function"), function) << php.dump(2);
  EXPECT_EQ(php[1].at("file"), script) << php.dump(2);
  EXPECT_EQ(php[1].at("line"), line) << php.dump(2);
  EXPECT_TRUE(php_frame(php, "{main}", script, line_of(script, top_call))) << php.dump(2);
}

// PHP: mysqli (mysqlnd speaks the protocol: socket level); the global is
// closed by PHP's request shutdown. The socket record carries the PHP stack
// of the connect().
TEST(Php, MysqliGlobalKeptUntilExitIsTheOneLeak) {
  const std::string script = php_script("mysqli_leak.php");
  Result r = run({"/usr/bin/php", script});
  expect_three_opened_one_leaked(r, "socket");
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("closed_by"), "runtime_exit") << leaked[0].dump(2);
  expect_php_stack(leaked[0].at("acquired"), script, "open_session", "mysqli::__construct",
                   "open_session();");
  expect_no_password(r, mysql("PASSWORD"));
}

// The connections the program closes carry their own function's stack: each
// is dumped (`connleak dump --format json`) while its function holds it open.
// The one kept until exit, open_session's, is the run's leak (the canary).
void expect_closed_ones_name_their_function(const std::string& script,
                                            const std::string& driver_call_totals,
                                            const std::string& driver_call_refresh,
                                            const std::string& library) {
  RunOptions o;
  o.options = "control=1";
  Session s({"/usr/bin/php", script, "pause"}, o);
  RunOptions plain;
  plain.preload = false;
  const std::vector<std::pair<std::string, std::string>> holders = {
      {"report_totals", driver_call_totals}, {"Cache::refresh", driver_call_refresh}};
  for (const auto& [function, driver_call] : holders) {
    ASSERT_TRUE(s.wait_out(function + " open")) << s.out() << s.err();
    Result dump = run({CONNLEAK_CLI, "dump", "--format", "json", std::to_string(s.pid())}, plain);
    ASSERT_EQ(dump.exit_code, 0) << describe(dump);
    json doc = json::parse(dump.out);
    auto open = with_status(doc, "open");
    ASSERT_EQ(open.size(), 1u) << doc.dump(2);
    EXPECT_EQ(open[0].at("library"), library) << open[0].dump(2);
    expect_php_stack(open[0].at("acquired"), script, function, driver_call,
                     function == "report_totals" ? "report_totals();" : "->refresh();");
    s.send("");
  }
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "report_totals open\nCache::refresh open\ndone\n") << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  expect_php_stack(leaked[0].at("acquired"), script, "open_session",
                   library == "socket" ? "mysqli::__construct" : "pg_connect", "open_session();");
}

TEST(Php, MysqliClosedConnectionsNameTheirFunctions) {
  expect_closed_ones_name_their_function(php_script("mysqli_leak.php"), "mysqli::__construct",
                                         "mysqli_connect", "socket");
}

TEST(Php, PgsqlClosedConnectionsNameTheirFunctions) {
  expect_closed_ones_name_their_function(php_script("pgsql_leak.php"), "pg_connect", "pg_connect",
                                         "libpq");
}

// A process exporting PHP's symbols for another engine version: its
// connection is tracked, with no PHP frames (the layouts are not read) and
// one line saying why.
TEST(Php, OtherEngineVersionGetsNoFramesAndOneLine) {
  Result r = run({bin("fake_php_host")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  EXPECT_EQ(count(r.err,
                  "connleak: no PHP stacks: this PHP runs Zend Engine "
                  "v9.9.0, connleak was "
                  "built for Zend Engine v"),
            1)
      << r.err;
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& acquired = leaked[0].at("acquired");
  EXPECT_TRUE(names_function(acquired.at("native"), "main")) << acquired.dump(2);
  // The host is PHP (an empty "php" stack says so), its frames were not read.
  ASSERT_TRUE(acquired.contains("php")) << acquired.dump(2);
  EXPECT_TRUE(acquired.at("php").empty()) << acquired.dump(2);
}

// `connleak run` over one of these programs: exit status 23 for the leak,
// the program's output through, no password.
void expect_connleak_run_exits_23(const std::vector<std::string>& program,
                                  const std::string& password) {
  RunOptions o;
  o.preload = false;
  std::vector<std::string> argv = {CONNLEAK_CLI, "run", "--"};
  argv.insert(argv.end(), program.begin(), program.end());
  Result r = run(argv, o);
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_NE(r.out.find("done"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("1 leaked"), std::string::npos) << describe(r);
  EXPECT_EQ(r.out.find(password), std::string::npos);
  EXPECT_EQ(r.err.find(password), std::string::npos);
}

// Ruby's pg: the global kept until exit is closed by pg's free function while
// Ruby's cleanup frees what is left (after the program's last line): a leak,
// closed_by runtime_exit, with what it last ran (the activity kept with the
// closed record). The two closed by the program are not.
std::string ruby_pg_missing() {
  if (access("/usr/bin/ruby", X_OK) != 0) return "/usr/bin/ruby is not installed";
  RunOptions plain;
  plain.preload = false;
  Result probe = run({"/usr/bin/ruby", "-e", "require 'pg'"}, plain);
  if (probe.exit_code != 0) return "Ruby's pg is not installed (Debian ruby-pg): " + probe.err;
  return "";
}

std::string ruby_script(const std::string& name) {
  return std::string(CONNLEAK_E2E_SCRIPTS_DIR) + "/ruby/" + name;
}

TEST(Ruby, PgGlobalKeptUntilExitIsTheOneLeakClosedByRuntimeExit) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  Result r = run({"/usr/bin/ruby", ruby_script("pg_leak.rb")});
  expect_three_opened_one_leaked(r, "libpq");
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& c = leaked[0];
  EXPECT_EQ(c.at("closed_by"), "runtime_exit") << c.dump(2);
  // Where Ruby's pg made it: the native stack goes through pg's extension
  // (its Ruby frames: ruby_stack_test.cpp).
  EXPECT_NE(c.at("client_module").get<std::string>().find("libpq"), std::string::npos) << c.dump(2);
  bool through_pg_ext = false;
  for (const json& f : c.at("acquired").at("native"))
    if (f.contains("module") && f.at("module").is_string() &&
        f.at("module").get<std::string>().find("pg_ext.so") != std::string::npos)
      through_pg_ext = true;
  EXPECT_TRUE(through_pg_ext) << c.dump(2);
  // What it last ran, kept with the record closed at exit; literal stripped.
  EXPECT_EQ(c.at("statements"), 2) << c.dump(2);
  EXPECT_EQ(c.at("last_statement"), "SET application_name = ?") << c.dump(2);
  expect_no_password(r, pg("APP_PASSWORD"));
}

TEST(Ruby, ConnleakRunExitsTwentyThree) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  expect_connleak_run_exits_23({"/usr/bin/ruby", ruby_script("pg_leak.rb")}, pg("APP_PASSWORD"));
}

// `connleak run php ...`: the text report leads the leak with its PHP stack.
TEST(Php, MysqliConnleakRunShowsThePhpStack) {
  const std::string script = php_script("mysqli_leak.php");
  RunOptions o;
  o.preload = false;
  Result r = run({CONNLEAK_CLI, "run", "--", "/usr/bin/php", script}, o);
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_NE(r.out.find("done"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("1 leaked"), std::string::npos) << describe(r);
  EXPECT_EQ(r.err.find(mysql("PASSWORD")), std::string::npos);
  EXPECT_NE(r.err.find("PHP stack:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" in open_session " + script + ":" +
                       std::to_string(line_of(script, "CONNECT-open_session"))),
            std::string::npos)
      << r.err;
}

TEST(Perl, ConnleakRunExitsTwentyThree) {
  expect_connleak_run_exits_23({"/usr/bin/perl", perl_script("dbi_leak.pl"), "mariadb"},
                               mysql("PASSWORD"));
}

}  // namespace
}  // namespace e2e
