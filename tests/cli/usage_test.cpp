// --help for every subcommand, and every kind of bad invocation: one line on
// stderr and exit 2 (the contract).
#include <gtest/gtest.h>

#include "tests/cli/harness.h"

using namespace cli_test;

namespace {

void expect_one_line_usage_error(const Result& r, const std::string& fragment) {
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(lines(r.err).size(), 1u) << describe(r);
  EXPECT_TRUE(contains(r.err, fragment)) << describe(r);
  EXPECT_EQ(r.out, "");
}

}  // namespace

TEST(Usage, TopLevelHelpListsCommands) {
  Result r = connleak({"--help"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  for (const char* word : {"run", "report", "dump", "Examples:"})
    EXPECT_TRUE(contains(r.out, word)) << word;
}

TEST(Usage, EachSubcommandHasHelpWithExamples) {
  for (const std::string cmd : {"run", "report", "dump"}) {
    Result r = connleak({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0) << cmd << describe(r);
    EXPECT_TRUE(contains(r.out, "Usage: connleak " + cmd)) << r.out;
    EXPECT_TRUE(contains(r.out, "Examples:\n  connleak " + cmd)) << r.out;
    EXPECT_EQ(r.err, "");
  }
}

TEST(Usage, RunHelpShowsTheSeparator) {
  Result r = connleak({"run", "-h"});
  EXPECT_TRUE(contains(r.out, "Usage: connleak run [OPTIONS] -- CMD [ARGS...]")) << r.out;
  for (const char* flag :
       {"--threshold", "--txn-threshold", "--report-dir", "--fail-on", "--suppressions"})
    EXPECT_TRUE(contains(r.out, flag)) << flag;
}

TEST(Usage, Version) {
  Result r = connleak({"--version"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_TRUE(contains(r.out, CONNLEAK_VERSION)) << r.out;
}

TEST(Usage, NoArgumentsPrintsHelpAndExits2) {
  Result r = connleak({});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(contains(r.err, "Usage: connleak")) << r.err;
}

TEST(Usage, UnknownCommand) {
  expect_one_line_usage_error(connleak({"frobnicate"}), "unknown command 'frobnicate'");
}

TEST(Usage, UnknownTopLevelFlag) {
  expect_one_line_usage_error(connleak({"--bogus"}), "unknown option --bogus");
}

TEST(Usage, BadFlagOfEachSubcommand) {
  expect_one_line_usage_error(connleak({"run", "--bogus", "--", "true"}),
                              "connleak run: unknown argument --bogus");
  expect_one_line_usage_error(connleak({"report", "--bogus", "x.json"}),
                              "connleak report: unknown argument --bogus");
  expect_one_line_usage_error(connleak({"dump", "--bogus", "1"}),
                              "connleak dump: unknown argument --bogus");
}

TEST(Usage, BadValues) {
  expect_one_line_usage_error(connleak({"run", "--threshold", "soon", "--", "true"}),
                              "--threshold: 'soon' is not a duration");
  expect_one_line_usage_error(connleak({"run", "--txn-threshold=5x", "--", "true"}),
                              "--txn-threshold");
  expect_one_line_usage_error(connleak({"run", "--fail-on", "sometimes", "--", "true"}),
                              "--fail-on: 'sometimes'");
  expect_one_line_usage_error(connleak({"report", "--format", "xml", "x.json"}),
                              "--format: 'xml' is not one of");
  expect_one_line_usage_error(connleak({"dump", "abc"}), "PID: 'abc' is not a process id");
  expect_one_line_usage_error(connleak({"dump", "--format", "sarif", "1"}), "--format");
  expect_one_line_usage_error(connleak({"dump", "--timeout", "never", "1"}), "--timeout");
}

TEST(Usage, MissingArguments) {
  expect_one_line_usage_error(connleak({"run"}), "CMD is required");
  expect_one_line_usage_error(connleak({"run", "--"}), "CMD is required");
  expect_one_line_usage_error(connleak({"report"}), "FILE_OR_DIR is required");
  expect_one_line_usage_error(connleak({"dump"}), "PID is required");
}

TEST(Usage, CommandArgumentsAreNotParsedAsFlags) {
  // After CMD starts, "--help" and "--bogus" belong to CMD.
  Result r = connleak({"run", "--", "/bin/sh", "-c", "echo \"$0 $1\"", "--help", "--bogus"});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.out, "--help --bogus\n");
}
