// scripts/ci-leak-check.sh, the README's CI job: the suite's status wins, then
// the leak verdict, and the SARIF/JUnit files are always there.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

namespace {

Result ci_check(const TempDir& dir, const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"bash", source_dir() + "/scripts/ci-leak-check.sh", "-o",
                                   dir.file("out")};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {.env = {{"CONNLEAK", cli_path()}}, .pg = true});
}

}  // namespace

TEST(CiScript, LeakingSuiteFailsWith23AndLeavesSarifAndJunit) {
  TempDir dir;
  Result r = ci_check(dir, {"--", bin("pq_scenarios"), "leak"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  json sarif = json::parse(read_file(dir.file("out/connleak.sarif")));
  EXPECT_EQ(sarif["runs"][0]["results"].size(), 1u);
  EXPECT_TRUE(contains(read_file(dir.file("out/connleak-junit.xml")), "failures=\"1\""));
  EXPECT_TRUE(contains(read_file(dir.file("out/connleak.txt")), "1 leaked connection(s)"));
}

TEST(CiScript, SuppressedLeakPasses) {
  TempDir dir;
  write_file(dir.file("connleak.supp"), "leak:open_report_conn\n");
  Result r = ci_check(dir, {"-s", dir.file("connleak.supp"), "--", bin("pq_scenarios"), "leak"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(json::parse(read_file(dir.file("out/connleak.sarif")))["runs"][0]["results"].empty());
}

TEST(CiScript, FailingSuiteKeepsItsStatusAndCleanSuitePasses) {
  TempDir dir;
  EXPECT_EQ(ci_check(dir, {"--", "/bin/sh", "-c", bin("pq_scenarios") + " leak; exit 3"}).exit_code,
            3);
  Result clean = ci_check(dir, {"--", bin("pq_scenarios"), "clean"});
  EXPECT_EQ(clean.exit_code, 0) << describe(clean);
  // A suite that never connects still leaves files for the upload steps.
  Result none = ci_check(dir, {"--", "true"});
  EXPECT_EQ(none.exit_code, 0) << describe(none);
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/connleak.sarif")));
  EXPECT_TRUE(std::filesystem::exists(dir.file("out/connleak-junit.xml")));
}

TEST(CiScript, UsageErrorIs2) {
  TempDir dir;
  Result r = ci_check(dir, {"--bogus"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "usage: ci-leak-check.sh")) << r.err;
}
