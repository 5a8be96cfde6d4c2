// Objects loaded with dlopen(RTLD_DEEPBIND) (issue 13 point 4): their calls to
// libpq, the MySQL client and libc bypass LD_PRELOAD; the shim rewrites their
// GOT as the dlopen returns (shim/hooks/got_patch.h). A C module loaded that
// way by a host linked against neither library, and PHP's ext/pgsql, which
// Debian's PHP loads with RTLD_DEEPBIND.
#include <gtest/gtest.h>

#include <regex>
#include <string>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

std::vector<json> of_library(const json& report, const std::string& library) {
  std::vector<json> out;
  for (const json& c : report.at("connections"))
    if (c.at("library") == library) out.push_back(c);
  return out;
}

void expect_no_secret(const Result& r, const std::string& secret) {
  ASSERT_FALSE(secret.empty());
  EXPECT_EQ(r.out.find(secret), std::string::npos);
  EXPECT_EQ(r.err.find(secret), std::string::npos);
  EXPECT_EQ(r.report_text.find(secret), std::string::npos);
}

const char* const kExpectedOut =
    "dlerror after dlopen=none\npq value=42\npq "
    "value=42\nmysql value=42\ndone\n";

TEST(DeepBind, ModuleLoadedWithDeepbindIsTracked) {
  mysql("PORT");
  Result r = run({bin("deepbind_host"), CONNLEAK_E2E_DEEPBIND_MODULE});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, kExpectedOut) << describe(r);
  // Two libpq connections (one finished, one kept) and one MariaDB connection,
  // closed: each seen once, at the library level, none twice through its
  // socket.
  json leak = the_one_leak(r, "libpq");
  ASSERT_FALSE(leak.is_null());
  EXPECT_TRUE(names_function(leak.at("acquired").at("native"), "deep_pq_kept")) << leak.dump(2);
  EXPECT_FALSE(names_function(leak.at("acquired").at("native"), "deep_pq_closed")) << leak.dump(2);
  EXPECT_TRUE(of_library(report_of(r), "socket").empty()) << describe(r);
  EXPECT_EQ(r.err.find("cannot"), std::string::npos) << r.err;
  expect_no_secret(r, mysql("PASSWORD"));
}

// The rewrite changes nothing the program can see: same output without the
// shim.
TEST(DeepBind, ModuleBehavesAsWithoutTheShim) {
  mysql("PORT");
  RunOptions plain;
  plain.preload = false;
  Result without = run({bin("deepbind_host"), CONNLEAK_E2E_DEEPBIND_MODULE}, plain);
  ASSERT_EQ(without.exit_code, 0) << describe(without);
  EXPECT_EQ(without.out, kExpectedOut) << describe(without);
  Result with = run({bin("deepbind_host"), CONNLEAK_E2E_DEEPBIND_MODULE});
  ASSERT_EQ(with.exit_code, 0) << describe(with);
  EXPECT_EQ(with.out, without.out) << describe(with);
}

// Two modules loaded with RTLD_DEEPBIND from two threads at once while a third
// loads and unloads an ordinary library; then a fork()ed child uses one.
TEST(DeepBind, ConcurrentLoadsAndAForkedChild) {
  Result r =
      run({bin("deepbind_threads"), CONNLEAK_E2E_DEEPBIND_MODULE, CONNLEAK_E2E_DEEPBIND_MODULE_B});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_NE(r.out.find("done\n"), std::string::npos) << describe(r);
  const std::regex child_line("child pid (\\d+) exit 0\n");
  std::smatch m;
  ASSERT_TRUE(std::regex_search(r.out, m, child_line)) << describe(r);
  // The parent: one finished connection per thread, and the kept canary.
  json leak = the_one_leak(r, "libpq");
  ASSERT_FALSE(leak.is_null());
  EXPECT_TRUE(names_function(leak.at("acquired").at("native"), "deep_pq_kept")) << leak.dump(2);
  // The child's own report: its connection, through the rewritten GOT it
  // inherited.
  auto child = read_report(r.report_dir + "/connleak." + m[1].str() + ".json");
  ASSERT_TRUE(child) << describe(r);
  EXPECT_EQ(child->at("summary").at("opened"), 1) << child->dump(2);
  EXPECT_EQ(child->at("summary").at("closed"), 1) << child->dump(2);
  EXPECT_EQ(child->at("summary").at("leaked"), 0) << child->dump(2);
}

std::string php_script(const std::string& name) {
  return std::string(CONNLEAK_E2E_SCRIPTS_DIR) + "/php/" + name;
}

// The premise, checked on this machine: PHP gives pgsql.so a scope of its own
// ahead of the global one (RTLD_DEEPBIND), so LD_PRELOAD's hooks come second.
TEST(Php, PgsqlExtensionIsLoadedWithDeepbind) {
  RunOptions plain;
  plain.preload = false;
  plain.env = {{"LD_DEBUG", "scopes"}};
  Result r =
      run({"/usr/bin/php", "-r", "echo function_exists('pg_connect') ? 'yes' : 'no';"}, plain);
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  ASSERT_EQ(r.out, "yes") << "php-pgsql is not installed: " << describe(r);
  std::size_t at = r.err.find("/pgsql.so [0]\n");
  ASSERT_NE(at, std::string::npos) << r.err;
  std::size_t scope0 = r.err.find("scope 0: ", at);
  ASSERT_NE(scope0, std::string::npos) << r.err;
  // scope 0 starts with the extension itself, not with the program.
  std::string first = r.err.substr(scope0 + 9, r.err.find(' ', scope0 + 9) - (scope0 + 9));
  EXPECT_NE(first.find("/pgsql.so"), std::string::npos) << first;
}

// PHP's pg_connect: three connections from three functions, two closed, one
// kept in a global that PHP's request shutdown closes (a leak of the
// program's).
TEST(Php, PgsqlThroughDeepbindGlobalKeptUntilExitIsTheOneLeak) {
  Result r = run({"/usr/bin/php", php_script("pgsql_leak.php")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "done\n") << describe(r);
  json leak = the_one_leak(r, "libpq");
  ASSERT_FALSE(leak.is_null());
  EXPECT_EQ(leak.at("closed_by"), "runtime_exit") << leak.dump(2);
  // The native stack runs from the script's execution (zend_execute) into
  // ext/pgsql, whose frame is unnamed: PHP unloads its extensions at module
  // shutdown, before the exit report. The PHP stack names the script's
  // function and line (runtime_test.cpp checks it frame by frame).
  EXPECT_TRUE(names_function(leak.at("acquired").at("native"), "zend_execute")) << leak.dump(2);
  const std::string script = php_script("pgsql_leak.php");
  const json& php = leak.at("acquired").at("php");
  ASSERT_GE(php.size(), 2u) << leak.dump(2);
  EXPECT_EQ(php[0].at("function"), "pg_connect") << php.dump(2);
  EXPECT_EQ(php[1].at("function"), "open_session") << php.dump(2);
  EXPECT_EQ(php[1].at("file"), script) << php.dump(2);
  EXPECT_EQ(php[1].at("line"), line_of(script, "CONNECT-open_session")) << php.dump(2);
  // Closed while the executor shuts down: no PHP stack is read then.
  EXPECT_TRUE(names_function(leak.at("closed_from").at("native"), "php_request_shutdown"))
      << leak.dump(2);
  EXPECT_TRUE(leak.at("closed_from").at("php").empty()) << leak.dump(2);
  EXPECT_TRUE(of_library(report_of(r), "socket").empty()) << describe(r);
  expect_no_secret(r, pg("APP_PASSWORD"));
}

TEST(Php, PgsqlConnleakRunExitsTwentyThree) {
  RunOptions o;
  o.preload = false;
  const std::string script = php_script("pgsql_leak.php");
  Result r = run({CONNLEAK_CLI, "run", "--", "/usr/bin/php", script}, o);
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  // The text report leads the leak with its PHP stack.
  EXPECT_NE(r.err.find("PHP stack:"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find(" in open_session " + script + ":" +
                       std::to_string(line_of(script, "CONNECT-open_session"))),
            std::string::npos)
      << r.err;
  EXPECT_NE(r.out.find("done"), std::string::npos) << describe(r);
  EXPECT_NE(r.err.find("1 leaked"), std::string::npos) << describe(r);
  EXPECT_EQ(r.out.find(pg("APP_PASSWORD")), std::string::npos);
  EXPECT_EQ(r.err.find(pg("APP_PASSWORD")), std::string::npos);
}

}  // namespace
}  // namespace e2e
