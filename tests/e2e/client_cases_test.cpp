// The cases every client library must pass the same way, written once and run
// for libpq (pq_scenarios, real PostgreSQL) and the MySQL C API
// (mysql_scenarios, MariaDB Connector/C against real MariaDB). The two
// programs share their scenario names and the names of the functions that
// open, close and leak, so one table row says what differs. What only one
// library has (resets, reconnects, init-only handles, ...) stays in
// libpq_test.cpp and mysql_test.cpp.
#include <gtest/gtest.h>

#include <set>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

struct Client {
  const char* name;     // the test name's suffix
  const char* program;  // pq_scenarios / mysql_scenarios
  const char* library;  // the report's "library"
  // The innermost frame of a leak's stack: the caller of PQconnectdb /
  // mysql_real_connect (issue 13 point 7: where it was connected, not where
  // mysql_init made the handle), both called by open_report_conn.
  const char* opener;
  const char* failed_closed;  // scenario: failed connect, then closed
  const char* close_call;     // named in the double-close alert
  bool needs_mysql;
  // Checks on the "leak" scenario's leaked record only one library has.
  void (*leak_extras)(const Result& r, const json& leaked);
};

void libpq_leak_extras(const Result& r, const json& c) {
  const json& rep = report_of(r);
  EXPECT_EQ(rep.at("tool"), "connleak");
  EXPECT_EQ(rep.at("pid"), r.pid);
  EXPECT_EQ(rep.at("trigger"), "exit");
  EXPECT_NE(c.at("target").get<std::string>().find("host=127.0.0.1"), std::string::npos);
}

void mysql_leak_extras(const Result& r, const json& c) {
  // mysql_thread_id: the Id column of SHOW PROCESSLIST.
  EXPECT_EQ(c.at("server_id").get<std::int64_t>(), printed(r, "leaked_thread_id"));
  EXPECT_NE(c.at("client_module").get<std::string>().find("libmariadb.so"), std::string::npos)
      << c.dump(2);
  EXPECT_NE(r.err.find("server id " + std::to_string(printed(r, "leaked_thread_id"))),
            std::string::npos)
      << r.err;
  // mysql_init was called from open_report_conn, not connect_app: its stack too.
  const json& native = c.at("acquired").at("native");
  EXPECT_EQ(native.at(1).at("function"), "open_report_conn") << native.dump(2);
  EXPECT_EQ(c.at("init_stack").at("native").at(0).at("function"), "open_report_conn") << c.dump(2);
}

const Client kClients[] = {
    {"Libpq", "pq_scenarios", "libpq", "must_connect", "failed_finished", "PQfinish", false,
     libpq_leak_extras},
    {"Mysql", "mysql_scenarios", "mysql", "connect_app", "failed_closed", "mysql_close", true,
     mysql_leak_extras},
};

// For gtest's test names (and ctest's, which show the parameter): the row's name.
void PrintTo(const Client& client, std::ostream* os) {
  *os << client.name;
}

class ClientCase : public ::testing::TestWithParam<Client> {
 protected:
  Result scenario(const std::string& name, const RunOptions& options = {}) {
    if (GetParam().needs_mysql)
      mysql("PORT");  // fails with a clear message when the mariadb fixture is not running
    return run({bin(GetParam().program), name}, options);
  }
};

TEST_P(ClientCase, LeakIsReportedWithTheOpeningFunction) {
  const Client& client = GetParam();
  Result r = scenario("leak");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // One PQconnectdb, one mysql_init + mysql_real_connect: one record each.
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  EXPECT_EQ(summary(r, "leaked"), 1u);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& c = leaked[0];
  EXPECT_EQ(c.at("library"), client.library);
  EXPECT_EQ(c.at("state"), "connected");
  // PQbackendPID (pg_stat_activity.pid) / mysql_thread_id.
  EXPECT_GT(c.at("server_id").get<std::int64_t>(), 0);
  const json& native = c.at("acquired").at("native");
  EXPECT_TRUE(names_function(native, "open_report_conn")) << native.dump(2);
  EXPECT_TRUE(names_function(native, "main")) << native.dump(2);
  // Innermost first, shim frames left out: the first frame is the caller of
  // the client library's open call.
  EXPECT_EQ(native.at(0).at("function"), client.opener) << native.dump(2);
  EXPECT_NE(native.at(0).at("file").get<std::string>().find(std::string(client.program) + ".c"),
            std::string::npos);
  EXPECT_TRUE(native.at(0).at("line").is_number());
  for (const json& f : native)
    EXPECT_EQ(f.at("module").get<std::string>().find("libconnleak"), std::string::npos) << f.dump();
  // The human report on stderr.
  EXPECT_NE(r.err.find("connleak: 1 connection(s) never closed, opened from:"), std::string::npos)
      << r.err;
  EXPECT_NE(r.err.find("open_report_conn"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("SUMMARY: connleak: 1 leaked connection(s)"), std::string::npos) << r.err;
  client.leak_extras(r, c);
}

TEST_P(ClientCase, CleanProgramReportsZeroAndOneLine) {
  Result r = scenario("clean");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u);
  EXPECT_EQ(summary(r, "closed"), 3u);
  EXPECT_EQ(summary(r, "leaked"), 0u);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);  // PQfinish(NULL) / mysql_close(NULL) is no close
  EXPECT_TRUE(report_of(r).at("connections").empty());
  // Silent when clean, like LeakSanitizer: the clean line is opt-in.
  EXPECT_EQ(r.err.find("connleak:"), std::string::npos) << r.err;
  Result verbose = scenario("clean", {.options = "verbosity=1"});
  EXPECT_NE(verbose.err.find("connleak: no leaks: 3 connection(s) opened, 3 closed"),
            std::string::npos)
      << verbose.err;
}

TEST_P(ClientCase, FailedConnectNeverClosedIsALeak) {
  Result r = scenario("failed_leak");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("state"), "failed");
  EXPECT_FALSE(leaked[0].contains("server_id") && leaked[0].at("server_id").is_number())
      << leaked[0].dump(2);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "connect_to_dead_port"));
  EXPECT_NE(r.err.find("connect failed and the handle was never closed"), std::string::npos)
      << r.err;
}

TEST_P(ClientCase, FailedConnectClosedIsClean) {
  Result r = scenario(GetParam().failed_closed);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  EXPECT_EQ(summary(r, "leaked"), 0u);
}

TEST_P(ClientCase, DoubleCloseIsReportedWithThreeStacksAndDoesNotCrash) {
  const Client& client = GetParam();
  Result r = scenario("double_close");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "double_closes"), 1u);
  EXPECT_EQ(summary(r, "leaked"), 0u);
  auto closed = with_status(report_of(r), "closed");
  ASSERT_EQ(closed.size(), 1u) << describe(r);
  const json& c = closed[0];
  EXPECT_EQ(c.at("library"), client.library);
  ASSERT_EQ(c.at("alerts").size(), 1u) << c.dump(2);
  EXPECT_EQ(c.at("alerts").at(0).at("kind"), "double_close");
  EXPECT_TRUE(names_function(c.at("acquired").at("native"), "open_for_double_close"));
  EXPECT_TRUE(names_function(c.at("closed_from").at("native"), "first_close"));
  EXPECT_TRUE(names_function(c.at("closed_again_from").at("native"), "second_close"));
  EXPECT_NE(r.err.find(std::string("double ") + client.close_call), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("closed again from:"), std::string::npos) << r.err;
}

TEST_P(ClientCase, SixteenThreadStormAccountsForEveryHandle) {
  Result r = scenario("storm");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 16u * 51u);
  EXPECT_EQ(summary(r, "closed"), 16u * 50u);
  EXPECT_EQ(summary(r, "leaked"), 16u);
  EXPECT_EQ(summary(r, "double_closes"), 0u);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 16u);
  std::set<std::int64_t> threads, server_ids;
  for (const json& c : leaked) {
    EXPECT_TRUE(names_function(c.at("acquired").at("native"), "storm_leak_one"));
    EXPECT_EQ(c.at("state"), "connected");
    threads.insert(c.at("thread").get<std::int64_t>());
    server_ids.insert(c.at("server_id").get<std::int64_t>());
  }
  EXPECT_EQ(threads.size(), 16u);  // each leak carries the thread that opened it
  EXPECT_EQ(server_ids.size(), 16u);
  EXPECT_NE(r.err.find("connleak: 16 connection(s) never closed, opened from:"), std::string::npos)
      << r.err;
}

INSTANTIATE_TEST_SUITE_P(, ClientCase, ::testing::ValuesIn(kClients),
                         [](const ::testing::TestParamInfo<Client>& info) {
                           return std::string(info.param.name);
                         });

}  // namespace
}  // namespace e2e
