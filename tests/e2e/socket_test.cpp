// Pure-Python drivers that speak the wire protocol themselves (asyncpg,
// aiomysql, PyMySQL, SQLAlchemy's asyncio engine): no libpq, no MySQL client
// library, so connleak tracks them at socket level. Each test runs a program
// from tests/e2e/python/sock_*.py under the shim and checks the finished
// run's report and stderr; the programs do their own slow work, the tests
// never sleep.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

// The value at JSON pointer `path`, null when absent: a missing field fails
// the assertion that reads it instead of aborting the test with an exception.
json field(const json& c, const std::string& path) {
  json::json_pointer p(path);
  return c.contains(p) ? c.at(p) : json();
}

Result python(const std::string& name, const std::vector<std::string>& args = {},
              const RunOptions& options = {}) {
  std::vector<std::string> argv{"/usr/bin/python3", script(name)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, options);
}

std::vector<json> of_library(const json& report, const std::string& library) {
  std::vector<json> out;
  for (const json& c : report.at("connections"))
    if (c.at("library") == library) out.push_back(c);
  return out;
}

// The number the program printed after `key ` on stdout ("server_id 1234"), -1 if none.
std::int64_t printed(const std::string& out, const std::string& key) {
  std::smatch m;
  if (!std::regex_search(out, m, std::regex("(^|\n)" + key + " (\\d+)\n"))) return -1;
  return std::stoll(m[2]);
}

std::string pg_tcp_target() {
  return "tcp 127.0.0.1:" + pg("PORT");
}
std::string mysql_tcp_target() {
  return "tcp " + mysql("HOST") + ":" + mysql("PORT");
}

// What every socket-level record carries.
void expect_socket_record(const json& c, const std::string& protocol, const std::string& target) {
  EXPECT_EQ(c.at("library"), "socket") << c.dump(2);
  EXPECT_EQ(field(c, "/protocol"), protocol) << c.dump(2);
  EXPECT_TRUE(std::regex_match(
      field(c, "/handle").is_string() ? field(c, "/handle").get<std::string>() : "",
      std::regex("fd:[0-9]+")))
      << c.dump(2);
  EXPECT_EQ(field(c, "/target"), target) << c.dump(2);
}

// The leaked connection of a sock_*.py leak program: the one opened in
// `function` at the line marked `marker`, nothing else leaked, one more
// connection opened and closed properly.
void expect_one_socket_leak(const Result& r, const std::string& file, const std::string& protocol,
                            const std::string& target, const std::string& function = "get_conn",
                            const std::string& marker = "LEAK-LINE") {
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& c = leaked[0];
  expect_socket_record(c, protocol, target);
  // Each program leaves it in a module global: the interpreter's teardown
  // closes the socket (asyncio's transport / PyMySQL's __del__), the program never did.
  EXPECT_EQ(field(c, "/closed_by"), "interpreter_exit") << c.dump(2);
  std::int64_t server_id = printed(r.out, "server_id");
  ASSERT_GT(server_id, 0) << r.out;
  EXPECT_EQ(field(c, "/server_id"), server_id) << c.dump(2);
  // Closed at teardown, so (as for libpq) the record may carry no live
  // transaction state; when it does, plaintext says no transaction. Live states
  // are checked on open connections in SignalDumpListsOpenSocketConnections.
  if (c.contains("transaction")) {
    EXPECT_EQ(field(c, "/transaction/state"), "idle") << c.dump(2);
  }
  json py = field(c, "/acquired/python");
  ASSERT_FALSE(py.empty()) << c.dump(2);
  int line = line_of(file, marker);
  ASSERT_GT(line, 0);
  EXPECT_TRUE(python_names(py, function, file, line)) << py.dump(2);
  EXPECT_NE(r.err.find(" in " + function + " " + file + ":" + std::to_string(line)),
            std::string::npos)
      << r.err;
  EXPECT_EQ(summary(r, "opened"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 1u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  EXPECT_EQ(of_library(*r.report, "socket").size(), 1u) << describe(r);
}

void expect_clean(const Result& r) {
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);  // a process that opened a connection writes a report
  EXPECT_TRUE(with_status(*r.report, "leaked").empty()) << describe(r);
  EXPECT_TRUE(r.report->at("connections").empty()) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 1u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);
  EXPECT_EQ(r.err.find("connleak:"), std::string::npos) << r.err;  // silent when clean
}

// The password never reaches connleak's output, in either form.
void expect_no_password(const Result& r, const std::string& password) {
  ASSERT_FALSE(password.empty());
  EXPECT_EQ(r.report_text.find(password), std::string::npos);
  EXPECT_EQ(r.err.find(password), std::string::npos);
}

// --- 1-3: leaks and clean runs, one per driver ---

TEST(Socket, AsyncpgLeakNamesTheLine) {
  std::string file = script("sock_asyncpg_leak.py");
  Result r = python("sock_asyncpg_leak.py");
  expect_one_socket_leak(r, file, "postgresql", pg_tcp_target());
  expect_no_password(r, pg("APP_PASSWORD"));  // SCRAM over TCP as the password user
}

TEST(Socket, AsyncpgOpenQueryCloseIsClean) {
  expect_clean(python("sock_asyncpg_clean.py"));
}

TEST(Socket, AiomysqlLeakNamesTheLine) {
  Result r = python("sock_aiomysql.py", {"leak"});
  expect_one_socket_leak(r, script("sock_aiomysql.py"), "mysql", mysql_tcp_target());
  expect_no_password(r, mysql("PASSWORD"));
}

TEST(Socket, AiomysqlOpenQueryCloseIsClean) {
  expect_clean(python("sock_aiomysql.py", {"clean"}));
}

TEST(Socket, PymysqlLeakNamesTheLine) {
  Result r = python("sock_pymysql.py", {"leak"});
  expect_one_socket_leak(r, script("sock_pymysql.py"), "mysql", mysql_tcp_target());
  expect_no_password(r, mysql("PASSWORD"));
}

TEST(Socket, PymysqlOpenQueryCloseIsClean) {
  expect_clean(python("sock_pymysql.py", {"clean"}));
}

// --- 4: a transaction held past txn_threshold ---

void expect_held_transaction_flagged(const std::string& name, const std::string& protocol) {
  std::string file = script(name);
  Result r =
      run_until_err({"/usr/bin/python3", file}, {.options = "txn_threshold=1s"}, "(txn_threshold)");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  int line = line_of(file, "TXN-LINE");
  ASSERT_GT(line, 0);
  // Exactly one warning: the idle connection beside it sat outside any transaction.
  EXPECT_EQ(count(r.err, "(txn_threshold)"), 1) << r.err;
  EXPECT_NE(r.err.find(" in hold_transaction " + file + ":" + std::to_string(line)),
            std::string::npos)
      << r.err;
  // The COMMIT ends it: one follow-up line.
  EXPECT_EQ(count(r.err, "the transaction flagged on connection id"), 1) << r.err;
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);
  EXPECT_EQ(summary(r, "flagged"), 1u) << describe(r);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u) << describe(r);
  const json& c = closed[0];
  expect_socket_record(c, protocol,
                       protocol == "postgresql" ? pg_tcp_target() : mysql_tcp_target());
  EXPECT_EQ(field(c, "/server_id"), printed(r.out, "server_id")) << c.dump(2) << r.out;
  EXPECT_EQ(field(c, "/alerts").size(), 1u) << c.dump(2);
  EXPECT_EQ(field(c, "/alerts/0/kind"), "idle_in_transaction") << c.dump(2);
  EXPECT_TRUE(python_names(field(c, "/transaction/began/python"), "hold_transaction", file, line))
      << c.dump(2);
}

TEST(Socket, AsyncpgTransactionHeldIsFlaggedIdleConnectionIsNot) {
  expect_held_transaction_flagged("sock_asyncpg_txn.py", "postgresql");
}

TEST(Socket, AiomysqlTransactionHeldIsFlaggedAutocommitIdleIsNot) {
  expect_held_transaction_flagged("sock_aiomysql_txn.py", "mysql");
}

// --- 5: an idle pool is never flagged ---

TEST(Socket, AsyncpgIdlePoolIsNeverFlagged) {
  std::string file = script("sock_asyncpg_pool.py");
  Session s({"/usr/bin/python3", file}, {.options = "txn_threshold=300ms"});
  ASSERT_TRUE(s.wait_out("idle")) << s.err();
  // Canary: the connection that holds a transaction is flagged, so the
  // watchdog was alive while the pool sat idle (idle since before the canary's
  // BEGIN: a pooled connection wrongly seen in a transaction would be flagged
  // by the same or an earlier scan).
  ASSERT_TRUE(s.wait_err("flagged idle_in_transaction after")) << s.err();
  EXPECT_NE(s.err().find(" in canary_holds_transaction " + file + ":" +
                         std::to_string(line_of(file, "CANARY-LINE"))),
            std::string::npos)
      << s.err();
  s.send("go");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(txn_threshold)"), 1) << r.err;  // the canary's, and nothing else
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 4u) << describe(r);  // min_size=max_size=3, and the canary
  EXPECT_EQ(summary(r, "closed"), 4u) << describe(r);  // pool.close() and the canary's close
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);
  EXPECT_EQ(summary(r, "flagged"), 1u) << describe(r);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u) << describe(r);  // the canary; no pooled connection
  EXPECT_TRUE(python_names(field(closed[0], "/transaction/began/python"),
                           "canary_holds_transaction", file, line_of(file, "CANARY-LINE")))
      << closed[0].dump(2);
}

// --- 6: SQLAlchemy's asyncio engine over asyncpg ---

TEST(Socket, SqlalchemyAsyncOnlyTheHeldTransactionIsFlagged) {
  std::string file = script("sock_sqlalchemy_async.py");
  int line = line_of(file, "TXN-LINE");
  Result r =
      run_until_err({"/usr/bin/python3", file}, {.options = "txn_threshold=1s"}, "(txn_threshold)");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // Exactly one alert: the warmed-up pooled connections idle outside any transaction.
  EXPECT_EQ(count(r.err, "(txn_threshold)"), 1) << r.err;
  EXPECT_NE(r.err.find(" in update_service_files " + file + ":" + std::to_string(line)),
            std::string::npos)
      << r.err;
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u)
      << describe(r);  // the three warm-up checkouts; the held one reuses one
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);  // engine.dispose() closed them all
  EXPECT_EQ(summary(r, "flagged"), 1u) << describe(r);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u) << describe(r);
  expect_socket_record(closed[0], "postgresql", pg_tcp_target());
  EXPECT_EQ(field(closed[0], "/alerts/0/kind"), "idle_in_transaction") << closed[0].dump(2);
  EXPECT_TRUE(python_names(field(closed[0], "/transaction/began/python"), "update_service_files",
                           file, line))
      << closed[0].dump(2);
}

TEST(Socket, SqlalchemyAsyncDroppedConnectionIsALeakNamingItsCheckout) {
  std::string file = script("sock_sqlalchemy_async_drop.py");
  int line = line_of(file, "LEAK-LINE");
  Result r = python("sock_sqlalchemy_async_drop.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // SQLAlchemy 1.4's own complaint when the garbage collector finalizes the
  // checked-out connection (it then invalidates = terminates it).
  ASSERT_NE(r.err.find("Exception during reset or similar"), std::string::npos) << r.err;
  ASSERT_NE(r.out.find("gc True\n"), std::string::npos) << r.out;
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u) << describe(r);  // the kept one and the forgotten one
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  expect_socket_record(leaked[0], "postgresql", pg_tcp_target());
  json py = field(leaked[0], "/acquired/python");
  EXPECT_TRUE(python_names(py, "checkout_and_forget", file, line)) << py.dump(2);
  EXPECT_NE(r.err.find(" in checkout_and_forget " + file + ":" + std::to_string(line)),
            std::string::npos)
      << r.err;
}

// --- 7: libpq's own socket is not recorded twice ---

TEST(Socket, Psycopg2BesideAsyncpgLibpqRecordIsTheOnlyOneForItsSession) {
  // Holds before and after socket tracking: the libpq side of test 7.
  std::string file = script("sock_mixed_psycopg2.py");
  Result r = python("sock_mixed_psycopg2.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  std::int64_t libpq_id = printed(r.out, "libpq_server_id");
  ASSERT_GT(libpq_id, 0) << r.out;
  auto libpq = of_library(*r.report, "libpq");
  ASSERT_EQ(libpq.size(), 1u) << describe(r);
  EXPECT_EQ(libpq[0].at("status"), "leaked");
  EXPECT_EQ(field(libpq[0], "/server_id"), libpq_id);
  EXPECT_TRUE(python_names(field(libpq[0], "/acquired/python"), "get_psycopg2", file,
                           line_of(file, "LIBPQ-LINE")))
      << libpq[0].dump(2);
  int same_session = 0;
  for (const json& c : r.report->at("connections"))
    if (c.contains("server_id") && c.at("server_id") == libpq_id) ++same_session;
  EXPECT_EQ(same_session, 1) << describe(r);
}

TEST(Socket, Psycopg2BesideAsyncpgEachReportedOnce) {
  std::string file = script("sock_mixed_psycopg2.py");
  Result r = python("sock_mixed_psycopg2.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(of_library(*r.report, "libpq").size(), 1u) << describe(r);
  auto sock = of_library(*r.report, "socket");
  ASSERT_EQ(sock.size(), 1u) << describe(r);
  expect_socket_record(sock[0], "postgresql", pg_tcp_target());
  EXPECT_EQ(sock[0].at("status"), "leaked");
  EXPECT_EQ(field(sock[0], "/server_id"), printed(r.out, "socket_server_id")) << r.out;
  EXPECT_TRUE(python_names(field(sock[0], "/acquired/python"), "get_asyncpg", file,
                           line_of(file, "SOCKET-LINE")))
      << sock[0].dump(2);
  EXPECT_EQ(r.report->at("connections").size(), 2u) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 2u) << describe(r);
}

// --- 8: sockets that are not database connections ---

TEST(Socket, HttpAndOtherSocketsAreNeverReported) {
  std::string file = script("sock_http_not_db.py");
  Result r = python("sock_http_not_db.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  ASSERT_EQ(r.report->at("connections").size(), 1u) << describe(r);
  const json& c = r.report->at("connections").at(0);
  EXPECT_EQ(c.at("status"), "leaked");
  expect_socket_record(c, "postgresql", pg_tcp_target());
  EXPECT_TRUE(
      python_names(field(c, "/acquired/python"), "get_conn", file, line_of(file, "LEAK-LINE")))
      << c.dump(2);
  EXPECT_EQ(summary(r, "opened"), 1u) << describe(r);  // HTTP, silent TCP, UDP: not counted
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
}

// --- 9: fork and subprocess children ---

TEST(Socket, ForkAndSubprocessChildrenLeaveTheParentsConnectionsAlone) {
  Result r = python("sock_fork.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);  // the program checks both children exited 0
  std::set<std::string> children;
  std::regex child_re("child (\\d+) (os\\._exit|normal_exit) exit (\\d+)\n");
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), child_re), end; it != end; ++it) {
    EXPECT_EQ((*it)[3], "0") << r.out;
    children.insert((*it)[1]);
  }
  ASSERT_EQ(children.size(), 2u) << r.out;
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_TRUE(with_status(*r.report, "leaked").empty()) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u)
      << describe(r);  // asyncpg + PyMySQL, nothing from the children
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u) << describe(r);
  // A fork child may write its own report (under its pid): the sockets it
  // inherited are the parent's, never its leaks or its opens. /bin/true opens
  // nothing and writes nothing.
  std::string parent = "connleak." + std::to_string(r.pid) + ".json";
  for (const std::string& f : r.files) {
    if (f == parent) continue;
    std::smatch m;
    ASSERT_TRUE(std::regex_match(f, m, std::regex("connleak\\.(\\d+)\\.json"))) << f;
    EXPECT_TRUE(children.count(m[1])) << f << " is not a fork child's report";
    auto child = read_report(r.report_dir + "/" + f);
    ASSERT_TRUE(child) << f;
    EXPECT_TRUE(with_status(*child, "leaked").empty()) << child->dump(2);
    EXPECT_EQ(child->at("summary").at("leaked"), 0) << child->dump(2);
    EXPECT_EQ(child->at("summary").at("opened"), 0) << child->dump(2);
  }
}

// --- 10: a CancelRequest is not a connection ---

TEST(Socket, AsyncpgCancelRequestIsNotCountedAsAConnection) {
  Result r = python("sock_asyncpg_cancel.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_NE(r.out.find("timed out\n"), std::string::npos) << r.out;  // the cancel really happened
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_TRUE(r.report->at("connections").empty()) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u)
      << describe(r);  // not 2: the side connection only carried the cancel
  EXPECT_EQ(summary(r, "closed"), 1u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);
}

// --- 11: unix sockets ---

TEST(Socket, UnixSocketConnectionsNameTheSocketPath) {
  std::string file = script("sock_unix.py");
  Result r = python("sock_unix.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  const json* pgc = nullptr;
  const json* myc = nullptr;
  for (const json& c : leaked) (field(c, "/protocol") == "postgresql" ? pgc : myc) = &c;
  ASSERT_TRUE(pgc && myc) << describe(r);
  expect_socket_record(*pgc, "postgresql", "unix " + pg("SOCKET_DIR") + "/.s.PGSQL." + pg("PORT"));
  expect_socket_record(*myc, "mysql", "unix " + mysql("SOCKET"));
  EXPECT_EQ(field(*pgc, "/server_id"), printed(r.out, "pg_server_id")) << r.out;
  EXPECT_EQ(field(*myc, "/server_id"), printed(r.out, "mysql_server_id")) << r.out;
  EXPECT_TRUE(
      python_names(field(*pgc, "/acquired/python"), "get_asyncpg", file, line_of(file, "PG-LINE")))
      << pgc->dump(2);
  EXPECT_TRUE(
      python_names(field(*myc, "/acquired/python"), "get_pymysql", file, line_of(file, "MY-LINE")))
      << myc->dump(2);
  EXPECT_EQ(summary(r, "opened"), 2u) << describe(r);
}

// --- 12: IPv6, when the server listens on ::1 ---

bool pg_listens_on_ipv6_loopback() {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  a.sin6_port = htons(static_cast<std::uint16_t>(std::stoi(pg("PORT"))));
  bool ok = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

// SSLRequest answered 'S': the rest is ciphertext. Still a PostgreSQL
// connection (opened, leaked), but its transaction state is unknown, and the
// report says why.
TEST(Socket, EncryptedConnectionIsTrackedWithItsStateUnknown) {
  const std::string file = script("sock_encrypted.py");
  Result r = python("sock_encrypted.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& c = leaked[0];
  EXPECT_EQ(c.at("library"), "socket");
  EXPECT_EQ(c.at("protocol"), "postgresql");
  EXPECT_EQ(c.at("state"), "connected");
  EXPECT_EQ(field(c, "/transaction/state"), "unknown") << c.dump(2);
  EXPECT_EQ(field(c, "/transaction/note"), "encrypted") << c.dump(2);
  EXPECT_TRUE(python_names(c.at("acquired").at("python"), "open_encrypted", file,
                           line_of(file, "LEAK-LINE")))
      << c.dump(2);
  EXPECT_NE(r.err.find("transaction state unknown (encrypted)"), std::string::npos) << r.err;
  EXPECT_EQ(r.report->at("summary").at("opened"), 1);
}

// Whether this machine has an IPv6 loopback at all (a container may not).
bool machine_has_ipv6_loopback() {
  int fd = socket(AF_INET6, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in6 a{};
  a.sin6_family = AF_INET6;
  a.sin6_addr = in6addr_loopback;
  bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  close(fd);
  return ok;
}

TEST(Socket, AsyncpgOverIpv6Loopback) {
  // Skipped only where the machine has no [::1]; scripts/pg-server.sh listens
  // on it wherever it exists, so a server that does not is a failure.
  if (!machine_has_ipv6_loopback()) GTEST_SKIP() << "this machine has no IPv6 loopback ([::1])";
  ASSERT_TRUE(pg_listens_on_ipv6_loopback())
      << "PostgreSQL does not listen on [::1]:" << pg("PORT") << " (scripts/pg-server.sh)";
  Result r = python("sock_asyncpg_leak.py", {}, {.env = {{"CONNLEAK_TEST_PG_HOST", "::1"}}});
  expect_one_socket_leak(r, script("sock_asyncpg_leak.py"), "postgresql",
                         "tcp [::1]:" + pg("PORT"));
}

// --- dumps list open socket-level connections ---

TEST(Socket, SignalDumpListsOpenSocketConnections) {
  std::string file = script("sock_dump.py");
  Session s({"/usr/bin/python3", file}, {.options = "dump_signal=12"});
  ASSERT_TRUE(s.wait_out("ready\n")) << s.err();
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  auto dump = read_report(s.report_dir() + "/connleak." + std::to_string(s.pid()) + ".1.json");
  ASSERT_TRUE(dump);
  EXPECT_EQ(dump->at("trigger"), "signal");
  auto open = with_status(*dump, "open");
  ASSERT_EQ(open.size(), 3u) << dump->dump(2);
  std::map<std::int64_t, json> by_id;
  for (const json& c : open)
    if (field(c, "/server_id").is_number_integer())
      by_id[c.at("server_id").get<std::int64_t>()] = c;
  const json& idle = by_id[printed(s.out(), "idle")];
  const json& busy = by_id[printed(s.out(), "busy")];
  const json& my = by_id[printed(s.out(), "mysql")];
  ASSERT_FALSE(idle.is_null() || busy.is_null() || my.is_null()) << dump->dump(2) << s.out();
  expect_socket_record(idle, "postgresql", pg_tcp_target());
  expect_socket_record(busy, "postgresql", pg_tcp_target());
  expect_socket_record(my, "mysql", mysql_tcp_target());
  EXPECT_EQ(field(idle, "/transaction/state"), "idle") << idle.dump(2);
  EXPECT_EQ(field(my, "/transaction/state"), "idle") << my.dump(2);
  EXPECT_EQ(field(busy, "/transaction/state"), "in_transaction") << busy.dump(2);
  EXPECT_TRUE(python_names(field(busy, "/transaction/began/python"), "begin_here", file,
                           line_of(file, "TXN-LINE")))
      << busy.dump(2);
  s.send("go");
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u) << describe(r);
}

// --- openGauss / GaussDB: protocol 3.51 and their own authentication ---

// No openGauss server is installable here: a stand-in speaking its published
// protocol (tests/e2e/python/opengauss_fake_server.py, run outside the shim)
// and a pure-Python client that logs in the way openGauss's libpq does
// (StartupMessage 3.51, AUTH_REQ_SHA256 answered with the RFC 5802 proof,
// checked by the server). Before 3.51 was accepted, neither connection was seen.
TEST(Socket, OpenGaussProtocol351ClientIsTrackedLikePostgres) {
  const std::string password = "Og-fake-Secret_42";
  Session server({"/usr/bin/python3", script("opengauss_fake_server.py")},
                 {.env = {{"OPENGAUSS_FAKE_PASSWORD", password}}, .preload = false});
  ASSERT_TRUE(server.wait_out("\n")) << server.err();
  const std::int64_t port = printed(server.out(), "port");
  ASSERT_GT(port, 0) << server.out();
  const std::string file = script("sock_opengauss.py");
  Result r = python("sock_opengauss.py", {std::to_string(port)},
                    {.env = {{"OPENGAUSS_FAKE_PASSWORD", password}}});
  expect_one_socket_leak(r, file, "postgresql", "tcp 127.0.0.1:" + std::to_string(port));
  expect_no_password(r, password);
  EXPECT_EQ(r.out.find(password), std::string::npos) << r.out;
  Result s = server.finish();
  EXPECT_EQ(s.exit_code, 0) << describe(s);
}

}  // namespace
}  // namespace e2e
