// MySQL C API programs (MariaDB Connector/C) under the shim against the real
// MariaDB of this test run.
#include <gtest/gtest.h>
#include <unistd.h>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

Result scenario(const std::string& name, const RunOptions& options = {}) {
  mysql("PORT");  // fails with a clear message when the mariadb fixture is not running
  return run({bin("mysql_scenarios"), name}, options);
}

std::string target_of(const json& c) {
  return c.at("target").get<std::string>();
}

// The run's one leak: connected, to the server session the program printed
// as `thread_id_key`, opened through `function`. Returns it for more checks
// (null when there is not exactly one, after failing the test).
json one_connected_leak(const Result& r, const std::string& function,
                        const std::string& thread_id_key) {
  auto leaked = with_status(report_of(r), "leaked");
  EXPECT_EQ(leaked.size(), 1u) << describe(r);
  if (leaked.size() != 1) return json();
  const json& c = leaked[0];
  EXPECT_EQ(c.at("state"), "connected");
  EXPECT_EQ(c.at("server_id").get<std::int64_t>(), printed(r, thread_id_key)) << describe(r);
  EXPECT_TRUE(names_function(c.at("acquired").at("native"), function)) << c.dump(2);
  return c;
}

std::string scenarios_source() {
  std::string here = __FILE__;
  return here.substr(0, here.rfind('/')) + "/programs/mysql_scenarios.c";
}

// Issue 13 point 7: a handle made by a factory (mysql_init in make_handle) and
// connected elsewhere (open_conn) was acquired where it was connected; the
// factory's stack is kept as init_stack. A connection whose init and connect
// share a function gets no init_stack (same run).
TEST(Mysql, LeakNamesTheConnectCallSiteAndKeepsTheInitStackWhenElsewhere) {
  Result r = scenario("init_elsewhere");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& rep = report_of(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "leaked"), 2u);
  auto leaked = with_status(rep, "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  const json* factory = nullptr;
  const json* here = nullptr;
  for (const json& c : leaked) {
    if (c.at("server_id") == printed(r, "factory_thread_id")) factory = &c;
    if (c.at("server_id") == printed(r, "here_thread_id")) here = &c;
  }
  ASSERT_NE(factory, nullptr) << rep.dump(2);
  ASSERT_NE(here, nullptr) << rep.dump(2);

  const json& acquired = factory->at("acquired").at("native");
  EXPECT_EQ(acquired.at(0).at("function"), "open_conn") << acquired.dump(2);
  EXPECT_EQ(acquired.at(0).at("line"), line_of(scenarios_source(), "open_conn connects"))
      << acquired.dump(2);
  EXPECT_FALSE(names_function(acquired, "make_handle")) << acquired.dump(2);
  ASSERT_TRUE(factory->contains("init_stack")) << factory->dump(2);
  const json& init = factory->at("init_stack").at("native");
  EXPECT_EQ(init.at(0).at("function"), "make_handle") << init.dump(2);
  EXPECT_EQ(init.at(0).at("line"), line_of(scenarios_source(), "make_handle inits"))
      << init.dump(2);
  EXPECT_EQ(factory->at("state"), "connected");
  EXPECT_NE(target_of(*factory).find("user=" + mysql("USER")), std::string::npos);

  EXPECT_EQ(here->at("acquired").at("native").at(0).at("function"), "init_and_connect_here")
      << here->dump(2);
  EXPECT_FALSE(here->contains("init_stack")) << here->dump(2);

  // The text report names both stacks of the factory-made connection.
  std::size_t init_line = r.err.find("its handle was initialized (mysql_init) at:");
  ASSERT_NE(init_line, std::string::npos) << r.err;
  EXPECT_NE(r.err.find("make_handle", init_line), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("open_conn"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("its handle was initialized", init_line + 1), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(mysql("PASSWORD")), std::string::npos);
}

// The record is made at mysql_init, before the connect names host, user and
// database: the connect writes the target into it.
TEST(Mysql, TargetIsReadBackFromTheConnectedHandle) {
  Result r = scenario("leak");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(target_of(leaked[0]), "host=127.0.0.1 port=" + mysql("PORT") +
                                      " dbname=" + mysql("DB") + " user=" + mysql("USER"))
      << leaked[0].dump(2);

  // mysql_change_user switches user and database on the same connection.
  Result changed = scenario("change_user");
  ASSERT_EQ(changed.exit_code, 0) << describe(changed);
  auto after = with_status(report_of(changed), "leaked");
  ASSERT_EQ(after.size(), 1u) << describe(changed);
  EXPECT_NE(target_of(after[0]).find("user=root"), std::string::npos) << after[0].dump(2);
  EXPECT_NE(target_of(after[0]).find("dbname=mysql"), std::string::npos) << after[0].dump(2);
}

TEST(Mysql, InitializedNeverConnectedIsReportedAsInitialized) {
  Result r = scenario("init_only");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("state"), "initialized");
  EXPECT_TRUE(names_function(leaked[0].at("acquired").at("native"), "init_without_connect"));
  EXPECT_NE(r.err.find("1 handle(s) initialized but never connected (low severity)"),
            std::string::npos)
      << r.err;
}

TEST(Mysql, InitializedNeverConnectedCanBeLeftOut) {
  Result r = scenario("init_only", {.options = "report_initialized=0"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 0u);
  EXPECT_TRUE(with_status(report_of(r), "leaked").empty());
  EXPECT_EQ(r.err.find("initialized but never connected"), std::string::npos) << r.err;
}

TEST(Mysql, StackHandleWhoseFrameIsGoneDoesNotCrashTheReport) {
  Result r = scenario("stack_handle");
  EXPECT_EQ(r.signal, 0) << describe(r);
  ASSERT_EQ(r.exit_code, 9) << describe(r);  // the program's own status, unchanged
  one_connected_leak(r, "leak_stack_handle", "stack_thread_id");
}

TEST(Mysql, NonBlockingConnectIsRecordedOnceWithTheStartersStack) {
  Result r = scenario("async");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // The connects run mysql_real_connect on a coroutine inside libmariadb and
  // the closes end in its own mysql_close: none of those may count.
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);
  EXPECT_EQ(summary(r, "double_closes"), 0u);
  json c = one_connected_leak(r, "start_async_connect", "async_thread_id");
  ASSERT_FALSE(c.is_null());
  EXPECT_TRUE(names_function(c.at("acquired").at("native"), "async_connect")) << c.dump(2);
}

TEST(Mysql, ReconnectAfterServerSideKillIsNotALeak) {
  Result r = scenario("reconnect");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // keep + done + two admin connections; libmariadb's temporary handles and
  // its close of the originals are its own business.
  EXPECT_EQ(summary(r, "opened"), 4u);
  EXPECT_EQ(summary(r, "closed"), 3u);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);
  EXPECT_EQ(summary(r, "double_closes"), 0u);
  // The session that exists now, not the killed one.
  one_connected_leak(r, "open_reconnecting", "new_thread_id");
  EXPECT_NE(printed(r, "new_thread_id"), printed(r, "old_thread_id"));
}

TEST(Mysql, MixedLibpqAndMysqlProgramReportsBoth) {
  mysql("PORT");
  Result r = run({bin("mysql_mixed")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 4u);
  EXPECT_EQ(summary(r, "closed"), 2u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  int pg = 0, my = 0;
  for (const json& c : leaked) {
    EXPECT_EQ(c.at("state"), "connected");
    if (c.at("library") == "libpq" && names_function(c.at("acquired").at("native"), "leak_pg"))
      ++pg;
    if (c.at("library") == "mysql" && names_function(c.at("acquired").at("native"), "leak_mysql"))
      ++my;
  }
  EXPECT_EQ(pg, 1) << describe(r);
  EXPECT_EQ(my, 1) << describe(r);
}

TEST(Mysql, NoPasswordInAnyOutput) {
  const std::string secret = mysql("PASSWORD");
  Result r = run({bin("mysql_scenarios"), "passwords", "--password=" + secret, "-p" + secret});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 4u) << describe(r);
  int connected = 0, failed = 0;
  for (const json& c : leaked) {
    connected += c.at("state") == "connected";  // password authentication really happened
    failed += c.at("state") == "failed";
  }
  EXPECT_EQ(connected, 3);
  EXPECT_EQ(failed, 1);
  EXPECT_EQ(r.report_text.find(secret), std::string::npos) << r.report_text;
  EXPECT_EQ(r.err.find(secret), std::string::npos) << r.err;
  EXPECT_EQ(r.out.find(secret), std::string::npos) << r.out;
}

TEST(Mysql, HandleNotSeenInitializedStartsAtTheConnect) {
  Result r = scenario("unseen_init");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 1u);
  json c = one_connected_leak(r, "connect_unseen_handle", "unseen_thread_id");
  ASSERT_FALSE(c.is_null());
  EXPECT_EQ(target_of(c), "host=127.0.0.1 port=" + mysql("PORT") + " dbname=" + mysql("DB") +
                              " user=" + mysql("USER"));
}

TEST(Mysql, ChangeUserAndResetConnectionKeepTheRecord) {
  Result r = scenario("change_user");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  EXPECT_EQ(summary(r, "resets"), 0u);
  one_connected_leak(r, "open_then_change_user", "changed_thread_id");
}

// MySQL 8's mysql_real_connect_nonblocking, through a stand-in client library.
TEST(Mysql, Mysql8NonBlockingConnectIsTracked) {
  Result r = run({bin("mysql_fake8_host")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 3u);  // one record per handle, not one per call
  EXPECT_EQ(summary(r, "closed"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  int connected = 0, failed = 0;
  for (const json& c : leaked) {
    const json& native = c.at("acquired").at("native");
    if (c.at("state") == "connected") {
      ++connected;
      EXPECT_EQ(c.at("server_id").get<std::int64_t>(), printed(r, "fake_thread_id"));
      EXPECT_TRUE(names_function(native, "nonblocking_leak")) << native.dump(2);
    } else if (c.at("state") == "failed") {
      ++failed;
      EXPECT_TRUE(names_function(native, "nonblocking_failed_leak")) << native.dump(2);
    }
  }
  EXPECT_EQ(connected, 1) << describe(r);
  EXPECT_EQ(failed, 1) << describe(r);
  EXPECT_EQ(r.report_text.find("Fake8-secret"), std::string::npos);
}

// Python's mysqlclient (MySQLdb): its extension module is loaded RTLD_LOCAL
// and calls mysql_init on a MYSQL embedded in the Python object. Only the
// native side is checked here (Python stacks are a separate feature).
const char* kPythonConnect = R"(
import os, MySQLdb
e = os.environ
kw = dict(host=e["CONNLEAK_TEST_MYSQL_HOST"], port=int(e["CONNLEAK_TEST_MYSQL_PORT"]),
          user=e["CONNLEAK_TEST_MYSQL_USER"], passwd=e["CONNLEAK_TEST_MYSQL_PASSWORD"],
          db=e["CONNLEAK_TEST_MYSQL_DB"])
leaked = MySQLdb.connect(**kw)  # a module global, never closed
done = MySQLdb.connect(**kw)
done.close()
print("python_thread_id=%d" % leaked.thread_id(), flush=True)
)";

// os._exit skips interpreter finalization, so the module global is never
// deallocated: a plain leak.
TEST(Mysql, PythonMysqlclientLeakIsReported) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  mysql("PORT");
  Result r = run({"/usr/bin/python3", "-c", std::string(kPythonConnect) + "os._exit(0)\n"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed"), 1u);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_EQ(leaked[0].at("library"), "mysql");
  EXPECT_EQ(leaked[0].at("state"), "connected");
  EXPECT_EQ(leaked[0].at("server_id").get<std::int64_t>(), printed(r, "python_thread_id"));
  const json& native = leaked[0].at("acquired").at("native");
  ASSERT_FALSE(native.empty());
  EXPECT_NE(native.at(0).at("module").get<std::string>().find("_mysql"), std::string::npos)
      << native.dump(2);
  EXPECT_EQ(r.report_text.find(mysql("PASSWORD")), std::string::npos);
}

// A normal exit: finalization deallocates the module global and mysqlclient's
// dealloc calls mysql_close (GIL held, interpreter finalizing). That close must
// go through cleanly and be accounted for exactly once, either as a close or
// (with the Python integration) as a leak the interpreter closed.
TEST(Mysql, PythonMysqlclientFinalizationCloseIsAccountedOnce) {
  if (access("/usr/bin/python3", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/python3";
  mysql("PORT");
  Result r = run({"/usr/bin/python3", "-c", kPythonConnect});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "opened"), 2u);
  EXPECT_EQ(summary(r, "closed") + summary(r, "leaked"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "unknown_closes"), 0u);
  EXPECT_EQ(summary(r, "double_closes"), 0u);
}

}  // namespace
}  // namespace e2e
