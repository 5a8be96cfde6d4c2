// Runtimes other than CPython that load the client libraries RTLD_LOCAL or
// speak the protocol themselves (issue 13): programs must keep working under
// the shim, and the counts must be the program's.
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>

#include "tests/e2e/harness.h"
#include "tests/e2e/ruby_env.h"

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
  json leak = the_one_leak(r, "socket");
  ASSERT_FALSE(leak.is_null());
  EXPECT_TRUE(names_function(leak.at("acquired").at("native"), "kept_until_exit")) << leak.dump(2);
  // Not a PHP process: no PHP stack at all (not even an empty one).
  EXPECT_FALSE(leak.at("acquired").contains("php")) << leak.dump(2);
}

// The programs of this file share one shape: three connections, two closed
// by the program, one kept until exit. What every such run must show.
void expect_three_opened_one_leaked(const Result& r, const std::string& library) {
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  EXPECT_EQ(r.err.find("cannot find the real"), std::string::npos) << r.err;
  the_one_leak(r, library);
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

// Java JDBC drivers (Debian's jars) speak the protocol themselves from the
// JVM's sockets: tracked at the socket level, the JVM's native frames only
// (Java frames: not done, README). The program is run from its source file
// (JDK 11+), so no build step. Skipped only when the JDK or a jar is absent.
std::string java_missing(const std::string& jar) {
  if (access("/usr/bin/java", X_OK) != 0)
    return "Java is not installed (scripts/install-deps.sh: default-jdk-headless)";
  if (access(jar.c_str(), R_OK) != 0) return jar + " is not installed (scripts/install-deps.sh)";
  return "";
}

std::vector<std::string> java_program(const std::string& jar, const std::string& driver) {
  return {"/usr/bin/java", "-cp", jar,
          std::string(CONNLEAK_E2E_SCRIPTS_DIR) + "/java/ThreeConnections.java", driver};
}

void expect_java_program(const std::string& jar, const std::string& driver,
                         const std::string& protocol, const std::string& password) {
  if (std::string why = java_missing(jar); !why.empty()) GTEST_SKIP() << why;
  Result r = run(java_program(jar, driver));
  expect_three_opened_one_leaked(r, "socket");
  if (r.report)
    for (const json& c : with_status(*r.report, "leaked"))
      EXPECT_EQ(c.value("protocol", ""), protocol) << c.dump(2);
  expect_no_password(r, password);
}

TEST(Java, PgjdbcThreeOpenedTwoClosedOneLeaked) {
  expect_java_program("/usr/share/java/postgresql.jar", "postgresql", "postgresql",
                      pg("APP_PASSWORD"));
}

TEST(Java, MariadbConnectorJThreeOpenedTwoClosedOneLeaked) {
  expect_java_program("/usr/share/java/mariadb-java-client.jar", "mariadb", "mysql",
                      mysql("PASSWORD"));
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
// exit, which Perl closes as it ends (DBI's END block, disconnect_all, or
// global destruction, perl_destruct).
//
// Each connection carries a "perl" stack (issue 13 point 5), innermost first,
// as caller() reports it: connect_db at the DBI->connect line, then the sub
// that opened it at its call of connect_db, then the main program's line.

// The index of `function` at `file`:`line` in `frames`, or -1.
int perl_frame_at(const json& frames, const std::string& function, const std::string& file,
                  int line) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const json& f = frames[i];
    if (f.at("function") == function && f.at("file") == file && f.at("line") == line)
      return static_cast<int>(i);
  }
  return -1;
}

// `c` was opened by `sub` (its marker's line), called from the main program
// at `call`'s line, through connect_db: three frames in that order.
void expect_opened_by(const json& c, const std::string& sub, const std::string& marker,
                      const std::string& call) {
  SCOPED_TRACE("connection " + c.at("id").dump() + ", expected from " + sub);
  const std::string file = perl_script("dbi_leak.pl");
  ASSERT_TRUE(c.at("acquired").contains("perl")) << c.dump(2);
  const json& perl = c.at("acquired").at("perl");
  int connect = perl_frame_at(perl, "main::connect_db", file, line_of(file, "CONNECT-LINE"));
  int opener = perl_frame_at(perl, "main::" + sub, file, line_of(file, marker));
  int top = perl_frame_at(perl, "<main>", file, line_of(file, call));
  EXPECT_GE(connect, 0) << perl.dump(2);
  EXPECT_EQ(opener, connect + 1) << perl.dump(2);
  EXPECT_EQ(top, opener + 1) << perl.dump(2);
  EXPECT_EQ(top + 1, static_cast<int>(perl.size())) << perl.dump(2);  // the outermost frame
  // Innermost first: above connect_db, DBI's own subs (DBI->connect).
  ASSERT_GT(connect, 0) << perl.dump(2);
  EXPECT_NE(perl.at(0).at("file").get<std::string>().find(".pm"), std::string::npos)
      << perl.dump(2);
}

void expect_perl_program(const std::string& driver, const std::string& library,
                         const std::string& password) {
  Result r = run({"/usr/bin/perl", perl_script("dbi_leak.pl"), driver});
  expect_three_opened_one_leaked(r, library);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("closed_by"), "runtime_exit") << leaked[0].dump(2);
  // The one leak (the canary of this run) names the sub that kept it.
  expect_opened_by(leaked[0], "open_session", "SESSION-LINE", "CALL-SESSION");
  expect_no_password(r, password);

  // The same program with the two others kept as well (the exit report lists
  // only connections still open or flagged): each names its own sub.
  Result all = run({"/usr/bin/perl", perl_script("dbi_leak.pl"), driver, "keep-all"});
  ASSERT_EQ(all.exit_code, 0) << describe(all);
  EXPECT_EQ(summary(all, "opened"), 3u) << describe(all);
  auto kept = with_status(report_of(all), "leaked");
  ASSERT_EQ(kept.size(), 3u) << describe(all);
  std::sort(kept.begin(), kept.end(),
            [](const json& a, const json& b) { return a.at("id") < b.at("id"); });
  expect_opened_by(kept[0], "report_totals", "TOTALS-LINE", "CALL-TOTALS");
  expect_opened_by(kept[1], "refresh_cache", "REFRESH-LINE", "CALL-REFRESH");
  expect_opened_by(kept[2], "open_session", "SESSION-LINE", "CALL-SESSION");
  expect_no_password(all, password);
}

TEST(Perl, DbdMariadbEachConnectionNamesItsSubAndTheGlobalIsTheOneLeak) {
  expect_perl_program("mariadb", "mysql", mysql("PASSWORD"));
}

TEST(Perl, DbdPgEachConnectionNamesItsSubAndTheGlobalIsTheOneLeak) {
  expect_perl_program("pg", "libpq", pg("APP_PASSWORD"));
}

// A host that is not Perl gets no "perl" key (the canary: the Perl run has
// one for the same kind of connection).
TEST(Perl, NonPerlHostHasNoPerlStack) {
  Result r = run({bin("raw_syscall_close")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_FALSE(leaked[0].at("acquired").contains("perl")) << leaked[0].dump(2);
  Result p = run({"/usr/bin/perl", perl_script("dbi_leak.pl"), "pg"});
  auto perl_leaked = with_status(report_of(p), "leaked");
  ASSERT_EQ(perl_leaked.size(), 1u) << describe(p);
  EXPECT_TRUE(perl_leaked[0].at("acquired").contains("perl")) << perl_leaked[0].dump(2);
}

// The version gate: a C program exporting the variables that identify a Perl
// interpreter (tests/e2e/programs/fake_perl_host.c, no interpreter behind
// them) is taken for Perl, and its reports carry a "perl" key (empty: its
// thread runs no Perl), only when they are exactly those of the perl the
// reader was built for: another version or other binary options, no key.
std::string ask_perl(const std::string& code) {
  RunOptions plain;
  plain.preload = false;
  Result r = run({"/usr/bin/perl", "-MConfig", "-e", code}, plain);
  if (r.exit_code != 0 || r.out.empty()) throw std::runtime_error("perl -e failed: " + r.err);
  return r.out;
}

std::optional<json> perl_stack_of_fake_host(const std::string& version,
                                            const std::string& options) {
  Result r = run({bin("fake_perl_host"), version, options});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  EXPECT_EQ(leaked.size(), 1u) << describe(r);
  if (leaked.size() != 1u || !leaked[0].at("acquired").contains("perl")) return std::nullopt;
  return leaked[0].at("acquired").at("perl");
}

TEST(Perl, FramesAreReadOnlyFromThePerlTheReaderWasBuiltFor) {
  const std::string version = ask_perl("printf '%vd', $^V");  // 5.36.0
  const std::string options = ask_perl("print map { qq( $_) } Config::bincompat_options()");
  ASSERT_NE(options.find(" USE_ITHREADS"), std::string::npos) << options;
  auto same = perl_stack_of_fake_host(version, options);
  ASSERT_TRUE(same.has_value()) << "the installed perl's version and options were not accepted";
  EXPECT_TRUE(same->empty()) << same->dump(2);
  // The same perl with its subversion one higher, then without ithreads.
  std::string next = version.substr(0, version.rfind('.') + 1) +
                     std::to_string(std::stoi(version.substr(version.rfind('.') + 1)) + 1);
  EXPECT_FALSE(perl_stack_of_fake_host(next, options).has_value()) << next;
  std::string unthreaded = options;
  unthreaded.erase(unthreaded.find(" USE_ITHREADS"), std::string(" USE_ITHREADS").size());
  EXPECT_FALSE(perl_stack_of_fake_host(version, unthreaded).has_value()) << unthreaded;
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
Result expect_connleak_run_exits_23(const std::vector<std::string>& program,
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
  return r;
}

// Ruby's pg: the global kept until exit is closed by pg's free function while
// Ruby's cleanup frees what is left (after the program's last line): a leak,
// closed_by runtime_exit, with what it last ran (the activity kept with the
// closed record). The two closed by the program are not.
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

TEST(Java, ConnleakRunExitsTwentyThree) {
  const std::string jar = "/usr/share/java/postgresql.jar";
  if (std::string why = java_missing(jar); !why.empty()) GTEST_SKIP() << why;
  expect_connleak_run_exits_23(java_program(jar, "postgresql"), pg("APP_PASSWORD"));
}

TEST(Ruby, ConnleakRunExitsTwentyThree) {
  if (std::string why = ruby_pg_missing(); !why.empty()) GTEST_SKIP() << why;
  expect_connleak_run_exits_23({"/usr/bin/ruby", ruby_script("pg_leak.rb")}, pg("APP_PASSWORD"));
}

TEST(Perl, ConnleakRunExitsTwentyThreeAndShowsThePerlStack) {
  const std::string file = perl_script("dbi_leak.pl");
  Result r = expect_connleak_run_exits_23({"/usr/bin/perl", file, "mariadb"}, mysql("PASSWORD"));
  // The human report leads the leak with its Perl frames.
  EXPECT_NE(r.err.find("opened from:\n    Perl stack:\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" in main::open_session " + file + ":" +
                       std::to_string(line_of(file, "SESSION-LINE"))),
            std::string::npos)
      << r.err;
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

}  // namespace
}  // namespace e2e
