// libpq programs under the shim against the real PostgreSQL of this test run.
#include <gtest/gtest.h>
#include <sys/stat.h>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

Result scenario(const std::string& name, const RunOptions& options = {}) {
  return run({bin("pq_scenarios"), name}, options);
}

TEST(Libpq, ReportFileIsPrivateAndComplete) {
  Result r = scenario("leak");
  ASSERT_TRUE(r.report) << describe(r);
  struct stat st {};
  std::string path = r.report_dir + "/connleak." + std::to_string(r.pid) + ".json";
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  // Exactly the report: no temp file left behind.
  EXPECT_EQ(r.files.size(), 1u);
  const json& rep = report_of(r);
  for (const char* key : {"version", "ppid", "argv", "generated_at", "summary", "connections"})
    EXPECT_TRUE(rep.contains(key)) << key;
  EXPECT_EQ(rep.at("argv").at(1), "leak");
}

TEST(Libpq, QuietSilencesTheCleanLine) {
  Result r = scenario("clean", {.options = "verbosity=1:quiet=1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err.find("connleak"), std::string::npos) << r.err;
  EXPECT_EQ(summary(r, "leaked"), 0u);  // the JSON file is still written
}

TEST(Libpq, ExitFromAnotherThreadWhileHooksRunWritesTheReport) {
  Result r = scenario("exit_thread");
  ASSERT_EQ(r.exit_code, 3) << describe(r);
  bool found = false;
  for (const json& c : with_status(report_of(r), "leaked"))
    found |= names_function(c.at("acquired").at("native"), "leak_before_thread_exit");
  EXPECT_TRUE(found) << describe(r);
}

TEST(Libpq, UnderscoreExitDoesNotLoseTheReport) {
  Result r = scenario("underscore_exit");
  ASSERT_EQ(r.exit_code, 5) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "leak_before_underscore_exit"));
}

TEST(Libpq, ExitStatusIsUnchanged) {
  Result r = scenario("exit_status");
  EXPECT_EQ(r.exit_code, 7) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u);
}

TEST(Libpq, NonBlockingConnectIsTracked) {
  Result r = scenario("async_leak");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u);
  EXPECT_EQ(leaked[0].at("state"), "connected");
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "start_async_connect"));
}

TEST(Libpq, NoPasswordInAnyOutput) {
  const std::string secret = pg("APP_PASSWORD");
  std::string uri = "postgresql://" + pg("APP_USER") + ":" + secret + "@" + pg("HOST") + ":" +
                    pg("PORT") + "/" + pg("APP_DB");
  Result r = run({bin("pq_scenarios"), "passwords", uri}, {.env = {{"PGPASSWORD", secret}}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 4u) << describe(r);
  for (const json& c : leaked) {
    EXPECT_EQ(c.at("state"), "connected");  // password authentication really happened
    EXPECT_NE(c.at("target").get<std::string>().find("user=" + pg("APP_USER")), std::string::npos);
  }
  EXPECT_EQ(r.report_text.find(secret), std::string::npos) << r.report_text;
  EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
}

TEST(Libpq, ResetsAreCountedOnTheSameHandle) {
  Result r = scenario("reset");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "resets"), 3u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u);
  EXPECT_EQ(leaked[0].at("resets"), 1);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "open_for_reset"));
}

TEST(Libpq, CloseOfUnknownHandleIsCountedAndPassedThrough) {
  Result r = scenario("unknown_close");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "unknown_closes"), 1u);
  EXPECT_EQ(summary(r, "opened"), 1u);
  EXPECT_EQ(summary(r, "leaked"), 0u);
  EXPECT_NE(r.err.find("PQfinish of a handle connleak never saw opened"), std::string::npos)
      << r.err;
}

TEST(Libpq, LibpqCallsIntoItselfAreNotRecorded) {
  Result r = scenario("ping");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u);  // PQping's internal connection is libpq's own
  EXPECT_EQ(summary(r, "closed"), 1u);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);
}

TEST(Libpq, ModuleLoadedRtldLocalIsTracked) {
  Result r = run({bin("dlopen_host"), CONNLEAK_E2E_MODULE});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u);
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "module_open_leak"));
  EXPECT_EQ(leaked[0].at("state"), "connected");
}

TEST(Libpq, RenamedLibpqCopyBesideTheSystemOneUsesTheCallersCopy) {
  std::string module = std::string(CONNLEAK_E2E_RENAMED_DIR) + "/pq_module_renamed.so";
  Result r = run({bin("dual_host"), module});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  int renamed = 0, system = 0;
  for (const json& c : leaked) {
    std::string lib = c.at("client_module");
    EXPECT_EQ(c.at("state"), "connected");
    if (names_function(c.at("acquired").at("native"), "module_open_leak")) {
      EXPECT_NE(lib.find(CONNLEAK_E2E_RENAMED_SONAME), std::string::npos) << lib;
      ++renamed;
    } else if (names_function(c.at("acquired").at("native"), "host_open_leak")) {
      EXPECT_NE(lib.find("/libpq.so.5"), std::string::npos) << lib;
      ++system;
    }
  }
  EXPECT_EQ(renamed, 1);
  EXPECT_EQ(system, 1);
}

TEST(Libpq, CxxHostWithLibpqxxKeepsExceptionsWorking) {
  Result r = run({bin("pqxx_host")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("caught 101"), std::string::npos);
  bool found = false;
  for (const json& c : with_status(report_of(r), "leaked"))
    found |= names_function(c.at("acquired").at("native"), "leak_pqxx_connection");
  EXPECT_TRUE(found) << describe(r);
}

TEST(Libpq, PsqlUnderTheShimIsClean) {
  Result r = run({pg("BINDIR") + "/psql", pg("CONNINFO"), "-c", "select 1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_GE(summary(r, "opened"), 1u);
  EXPECT_EQ(summary(r, "leaked"), 0u);
}

TEST(Libpq, PgbenchConnectPerTransactionIsClean) {
  std::string pgbench = pg("BINDIR") + "/pgbench";
  Result init = run({pgbench, "-i", "-s", "1", "-q", pg("CONNINFO")}, {.preload = false});
  ASSERT_EQ(init.exit_code, 0) << describe(init);
  Result r = run({pgbench, "-C", "-S", "-c", "4", "-j", "2", "-t", "25", pg("CONNINFO")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_GE(summary(r, "opened"), 100u);
  EXPECT_EQ(summary(r, "leaked"), 0u);
  EXPECT_EQ(summary(r, "opened"), summary(r, "closed"));
}

TEST(Options, BadOptionsWarnAndTheProgramRuns) {
  Result r = scenario("leak", {.options = "stack_depth=abc:bogus_key=1:verbosity=9"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.err.find("'stack_depth=abc'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'bogus_key'"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("'verbosity=9'"), std::string::npos) << r.err;
  EXPECT_EQ(summary(r, "leaked"), 1u);
}

TEST(Options, StackDepthLimitsFrames) {
  Result r = scenario("leak", {.options = "stack_depth=2"});
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u);
  EXPECT_EQ(leaked[0].at("acquired").at("native").size(), 2u);
  EXPECT_EQ(leaked[0].at("acquired").at("native").at(1).at("function"), "open_report_conn");
}

TEST(Options, DisabledMeansNoRecordsAndNoReport) {
  Result r = scenario("leak", {.options = "enabled=0"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_FALSE(r.report);
  EXPECT_EQ(r.err.find("connleak"), std::string::npos) << r.err;
}

TEST(Options, HelpListsOptions) {
  Result r = scenario("clean", {.options = "help=1"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  for (const char* name : {"enabled", "report_dir", "stack_depth", "verbosity", "quiet"})
    EXPECT_NE(r.err.find(name), std::string::npos) << name;
}

}  // namespace
}  // namespace e2e

namespace e2e {
namespace {

// The README's demo program: three requests leak on the same early return.
TEST(Demo, LeakyServiceReportsOneSiteWithThreeLeaks) {
  Result r = run({bin("leaky_service")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  EXPECT_EQ(r.report->at("summary").at("leaked"), 3);
  EXPECT_EQ(r.report->at("summary").at("opened"), 9);
  for (const json& c : with_status(*r.report, "leaked"))
    EXPECT_TRUE(names_function(c.at("acquired").at("native"), "handle_request"));
  EXPECT_NE(r.err.find("connleak: 3 connection(s) never closed, opened from:"), std::string::npos)
      << r.err;
}

}  // namespace
}  // namespace e2e
