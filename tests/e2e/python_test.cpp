// Python programs under the shim (Debian's /usr/bin/python3 and its drivers):
// reports must point at the Python line that opened the connection.
#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

Result python(const std::string& name, const RunOptions& options = {}) {
  return run({"/usr/bin/python3", script(name)}, options);
}

void expect_python_leak_at_get_conn(const Result& r, const std::string& file) {
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  const json& c = leaked[0];
  // The interpreter closed it while tearing down module globals: still a leak.
  EXPECT_EQ(c.at("closed_by"), "interpreter_exit") << c.dump(2);
  const json& py = c.at("acquired").at("python");
  ASSERT_FALSE(py.empty()) << c.dump(2);
  EXPECT_TRUE(python_names(py, "get_conn", file, line_of(file, "LEAK-LINE"))) << py.dump(2);
  EXPECT_TRUE(python_names(py, "<module>", file, line_of(file, "CONN = get_conn()"))) << py.dump(2);
  // The human report leads with the Python frames.
  EXPECT_NE(r.err.find("opened from:\n    Python stack:\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" in get_conn " + file + ":" + std::to_string(line_of(file, "LEAK-LINE"))),
            std::string::npos)
      << r.err;
}

TEST(Python, Psycopg2LeakNamesTheLineAndIsALeakAtInterpreterExit) {
  Result r = python("psycopg2_leak.py");
  expect_python_leak_at_get_conn(r, script("psycopg2_leak.py"));
  EXPECT_EQ(r.report->at("summary").at("opened"), 2);
  EXPECT_EQ(r.report->at("summary").at("closed"), 1);
}

TEST(Python, Psycopg3PurePythonThroughCtypesIsTracked) {
  Result r = python("psycopg3_leak.py");
  ASSERT_NE(r.out.find("impl python"), std::string::npos) << r.out;  // really the ctypes build
  expect_python_leak_at_get_conn(r, script("psycopg3_leak.py"));
  EXPECT_EQ(r.report->at("summary").at("opened"), 2);
}

// The per-code-object cache of names (shim/python/python_stack.cpp) holds a
// reference to each code object it keys, so a freed function's address never
// names another: 30 functions made, called and dropped in turn.
TEST(Python, FreshCodeObjectsEachNameTheirOwnFunctionAndLine) {
  constexpr int kFunctions = 30;
  Result r = run({"/usr/bin/python3", script("fresh_code_objects.py"), std::to_string(kFunctions)});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_NE(r.out.find("opened 30"), std::string::npos) << r.out;
  ASSERT_TRUE(r.report) << describe(r);
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), static_cast<std::size_t>(kFunctions)) << describe(r);
  std::set<int> seen;
  for (const json& c : leaked) {
    const json& py = c.at("acquired").at("python");
    // psycopg2.connect, then the generated function that called it.
    ASSERT_GE(py.size(), 2u) << c.dump(2);
    ASSERT_EQ(py.at(0).at("function"), "connect") << py.dump(2);
    const std::string function = py.at(1).at("function");
    ASSERT_EQ(function.rfind("make_", 0), 0u) << py.dump(2);
    const int i = std::stoi(function.substr(5));
    EXPECT_EQ(py.at(1).at("file"), "<generated " + std::to_string(i) + ">") << py.dump(2);
    EXPECT_EQ(py.at(1).at("line"), i + 2) << py.dump(2);
    seen.insert(i);
  }
  EXPECT_EQ(seen.size(), static_cast<std::size_t>(kFunctions)) << describe(r);
}

TEST(Python, MysqlclientLeakNamesTheLine) {
  Result r = python("mysqldb_leak.py");
  expect_python_leak_at_get_conn(r, script("mysqldb_leak.py"));
}

TEST(Python, SqlalchemyPoolOnlyTheHeldTransactionIsFlagged) {
  std::string file = script("sqlalchemy_pool.py");
  Result r =
      run_until_err({"/usr/bin/python3", file}, {.options = "txn_threshold=1s"}, "(txn_threshold)");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // Exactly one alert: the idle pooled connections sat idle since before the
  // held transaction began, so a wrong flag would have come in the same scan.
  EXPECT_EQ(count(r.err, "(txn_threshold)"), 1) << r.err;
  EXPECT_NE(r.err.find(" in update_service_files " + file + ":" +
                       std::to_string(line_of(file, "TXN-LINE"))),
            std::string::npos)
      << r.err;
  ASSERT_TRUE(r.report);
  EXPECT_EQ(r.report->at("summary").at("leaked"), 0);  // engine.dispose() closed them all
  EXPECT_EQ(r.report->at("summary").at("flagged"), 1);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].at("alerts").at(0).at("kind"), "idle_in_transaction");
  EXPECT_TRUE(python_names(closed[0].at("transaction").at("began").at("python"),
                           "update_service_files", file, line_of(file, "TXN-LINE")))
      << closed[0].dump(2);
}

TEST(Python, ThreadsEachCarryTheirOwnPythonStack) {
  Result r = python("threads.py");
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::map<std::string, std::int64_t> tid_of;
  std::regex re("(worker_\\d) (\\d+)");
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), re), end; it != end; ++it)
    tid_of[(*it)[1]] = std::stoll((*it)[2]);
  ASSERT_EQ(tid_of.size(), 8u) << r.out;
  auto leaked = with_status(*r.report, "leaked");
  ASSERT_EQ(leaked.size(), 8u) << describe(r);
  std::set<std::string> seen;
  for (const json& c : leaked) {
    const json& py = c.at("acquired").at("python");
    ASSERT_FALSE(py.empty());
    std::string fn;
    for (const json& f : py)
      if (f.at("function").get<std::string>().rfind("worker_", 0) == 0) fn = f.at("function");
    ASSERT_TRUE(tid_of.count(fn)) << py.dump(2);
    EXPECT_EQ(c.at("thread").get<std::int64_t>(), tid_of[fn]) << c.dump(2);
    seen.insert(fn);
  }
  EXPECT_EQ(seen.size(), 8u);
  EXPECT_EQ(r.report->at("summary").at("closed"), 8);
}

TEST(Python, NativeHostHasNoPythonField) {
  Result r = run({bin("pq_scenarios"), "leak"});
  ASSERT_TRUE(r.report);
  EXPECT_FALSE(with_status(*r.report, "leaked").at(0).at("acquired").contains("python"));
}

}  // namespace
}  // namespace e2e

namespace e2e {
namespace {
TEST(Python, MysqlclientTransactionHeldIsFlaggedAutocommitIdleIsNot) {
  std::string file = script("mysqldb_txn.py");
  Session s({"/usr/bin/python3", file}, {.options = "txn_threshold=300ms"});
  ASSERT_TRUE(s.wait_out("holding")) << s.err();
  ASSERT_TRUE(s.wait_err("flagged idle_in_transaction after")) << s.err();
  EXPECT_NE(
      s.err().find(" in update_orders " + file + ":" + std::to_string(line_of(file, "TXN-LINE"))),
      std::string::npos)
      << s.err();
  s.send("go");
  ASSERT_TRUE(s.wait_err("the transaction flagged on connection id")) << s.err();
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "(txn_threshold)"), 1) << r.err;
  EXPECT_EQ(r.report->at("summary").at("flagged"), 1);
  EXPECT_EQ(r.report->at("summary").at("leaked"), 0);
  auto closed = with_status(*r.report, "closed");
  ASSERT_EQ(closed.size(), 1u);
  EXPECT_EQ(closed[0].at("library"), "mysql");
  EXPECT_NE(closed[0].at("target").get<std::string>().find("user=" + mysql("USER")),
            std::string::npos);
  EXPECT_GT(closed[0].at("server_id").get<std::int64_t>(), 0);
}

}  // namespace
}  // namespace e2e
