// `connleak run` on real programs against the test PostgreSQL: exit codes for
// each --fail-on, the merged summary of a process tree, suppressions, and the
// SARIF of a real run pointing at the real source line.
#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

namespace {

Result run_under(const std::vector<std::string>& flags, const std::vector<std::string>& command) {
  std::vector<std::string> args = {"run"};
  args.insert(args.end(), flags.begin(), flags.end());
  args.push_back("--");
  args.insert(args.end(), command.begin(), command.end());
  return connleak(args, {.pg = true});
}

std::string scenarios() {
  return bin("pq_scenarios");
}

// The merged summary is what connleak itself prints last (after the shim's per-process reports).
std::string last_block(const std::string& err) {
  std::size_t at = err.rfind("connleak run: ");
  return at == std::string::npos ? err : err.substr(at);
}

}  // namespace

TEST(RunFailOn, LeakingProgram) {
  Result r = run_under({}, {scenarios(), "leak"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_TRUE(
      contains(last_block(r.err),
               "SUMMARY: connleak: 1 leaked connection(s) from 1 site(s); 2 opened, 1 closed."))
      << r.err;
  EXPECT_TRUE(contains(last_block(r.err), "open_report_conn")) << r.err;
  EXPECT_EQ(run_under({"--fail-on", "leaked"}, {scenarios(), "leak"}).exit_code, 23);
  EXPECT_EQ(run_under({"--fail-on", "flagged"}, {scenarios(), "leak"}).exit_code, 23);
  EXPECT_EQ(run_under({"--fail-on", "never"}, {scenarios(), "leak"}).exit_code, 0);
}

TEST(RunFailOn, CleanProgram) {
  for (const char* fail_on : {"leaked", "flagged", "never"}) {
    Result r = run_under({"--fail-on", fail_on}, {scenarios(), "clean"});
    EXPECT_EQ(r.exit_code, 0) << fail_on << describe(r);
    EXPECT_TRUE(contains(r.err, "connleak: no leaks: 3 connection(s) opened, 3 closed")) << r.err;
  }
}

TEST(RunFailOn, FlaggedButNotLeaked) {
  // A double close is an alert on a closed connection: flagged, not leaked.
  EXPECT_EQ(run_under({}, {scenarios(), "double_close"}).exit_code, 0);
  Result r = run_under({"--fail-on", "flagged"}, {scenarios(), "double_close"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_TRUE(contains(last_block(r.err), "double close")) << r.err;
}

TEST(RunFailOn, FailingProgramKeepsItsStatus) {
  EXPECT_EQ(run_under({}, {scenarios(), "exit_status"}).exit_code, 7);  // clean, exits 7
  // Leaked and failed: the program's own failure is the more useful status.
  Result r = run_under({}, {"/bin/sh", "-c", scenarios() + " leak; exit 7"});
  EXPECT_EQ(r.exit_code, 7) << describe(r);
  EXPECT_TRUE(contains(last_block(r.err), "1 leaked connection(s)")) << r.err;
}

TEST(RunMerge, ProcessTreeIsOneSiteWithCount3) {
  TempDir dir;
  const std::string p = scenarios();
  Result r = run_under({"--report-dir", dir.path()},
                       {"/bin/sh", "-c", p + " leak & " + p + " leak & " + p + " leak & wait"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  std::string summary = last_block(r.err);
  EXPECT_TRUE(contains(summary, "connleak run: merged summary of 3 report(s)")) << summary;
  EXPECT_TRUE(contains(summary, "connleak: 3 connection(s) never closed, opened from:")) << summary;
  EXPECT_TRUE(contains(
      summary, "SUMMARY: connleak: 3 leaked connection(s) from 1 site(s); 6 opened, 3 closed."))
      << summary;
  // One report per leaking process, kept in --report-dir; the shell opened nothing and wrote none.
  int files = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir.path()))
    files += e.path().extension() == ".json";
  EXPECT_EQ(files, 3);
  // The kept reports merge the same way afterwards.
  Result again = connleak({"report", dir.path()});
  EXPECT_EQ(again.exit_code, 23);
  EXPECT_TRUE(contains(again.out, "connleak: 3 connection(s) never closed")) << again.out;
}

TEST(RunMerge, ExecedProgramsAreCovered) {
  Result r = run_under({}, {"/bin/sh", "-c", "exec " + scenarios() + " leak"});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
}

TEST(RunMerge, OldReportsInAReusedDirectoryAreIgnored) {
  TempDir dir;
  write_file(dir.file("connleak.101.json"), read_file(golden("inputs/connleak.101.json")));
  Result r = run_under({"--report-dir", dir.path()}, {scenarios(), "clean"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(std::filesystem::exists(dir.file("connleak.101.json")));
}

TEST(RunSuppressions, SuppressedLeakPassesAndIsListed) {
  TempDir dir;
  write_file(dir.file("connleak.supp"), "# the test leaks on purpose\nleak:open_report_conn\n");
  Result r = run_under({"--suppressions", dir.file("connleak.supp")}, {scenarios(), "leak"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  std::string summary = last_block(r.err);
  EXPECT_TRUE(
      contains(summary, "Suppressions used:\n  count template\n      1 leak:open_report_conn\n"))
      << summary;
  Result miss =
      run_under({"--suppressions", dir.file("connleak.supp")}, {scenarios(), "failed_leak"});
  EXPECT_EQ(miss.exit_code, 23) << describe(miss);
}

TEST(RunSarif, RealRunPointsAtTheProgramsSourceLine) {
  TempDir dir;
  Result r = run_under({"--report-dir", dir.path()}, {scenarios(), "leak"});
  ASSERT_EQ(r.exit_code, 23) << describe(r);
  Result sarif =
      connleak({"report", "--format", "sarif", "--source-root", source_dir(), dir.path()});
  ASSERT_EQ(sarif.exit_code, 23) << describe(sarif);
  const json doc = json::parse(sarif.out);
  const json& results = doc["runs"][0]["results"];
  ASSERT_EQ(results.size(), 1u) << sarif.out;
  const json& loc = results[0]["locations"][0]["physicalLocation"];
  EXPECT_EQ(loc["artifactLocation"]["uri"], "tests/e2e/programs/pq_scenarios.c");
  EXPECT_EQ(loc["artifactLocation"]["uriBaseId"], "%SRCROOT%");
  EXPECT_GT(loc["region"]["startLine"].get<int>(), 0);
  EXPECT_TRUE(contains(results[0]["message"]["text"], "open_report_conn")) << sarif.out;
}

TEST(RunPasswords, CommandLinePasswordNotInTheSummary) {
  const std::string uri =
      "postgresql://" + pg_env().at("CONNLEAK_TEST_PG_APP_USER") + ":" +
      pg_env().at("CONNLEAK_TEST_PG_APP_PASSWORD") + "@" + pg_env().at("CONNLEAK_TEST_PG_HOST") +
      ":" + pg_env().at("CONNLEAK_TEST_PG_PORT") + "/" + pg_env().at("CONNLEAK_TEST_PG_APP_DB");
  Result r = run_under({}, {scenarios(), "passwords", uri});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_FALSE(contains(last_block(r.err), pg_env().at("CONNLEAK_TEST_PG_APP_PASSWORD"))) << r.err;
}
