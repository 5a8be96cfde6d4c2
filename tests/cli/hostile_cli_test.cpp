// Hostile inputs to the command line: suppressions files that are not regular
// files (a FIFO used to hang `connleak run` and `connleak report`), and
// `report -o` onto a planted symlink. Also: dumps are on by default under
// `connleak run`, which a plain preloaded process no longer has.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>

#include "tests/cli/harness.h"

using namespace cli_test;

namespace {

void refused_by_report_and_run(const std::string& path, const std::string& why) {
  Result report =
      connleak({"report", "--suppressions", path, golden("inputs")}, {.timeout_seconds = 30});
  EXPECT_EQ(report.exit_code, 2) << describe(report);
  EXPECT_EQ(lines(report.err).size(), 1u) << report.err;
  EXPECT_TRUE(contains(report.err, "cannot read suppressions file " + path + ": it " + why))
      << report.err;
  EXPECT_EQ(report.out, "");
  Result run =
      connleak({"run", "--suppressions", path, "--", "/bin/true"}, {.timeout_seconds = 30});
  EXPECT_EQ(run.exit_code, 2) << describe(run);
  EXPECT_EQ(lines(run.err).size(), 1u) << run.err;
  EXPECT_TRUE(contains(run.err, why)) << run.err;
}

TEST(HostileCli, SuppressionsFifoIsRefusedNotWaitedOn) {
  TempDir dir;
  ASSERT_EQ(mkfifo(dir.file("supp").c_str(), 0600), 0);
  refused_by_report_and_run(dir.file("supp"), "is not a regular file");
}

TEST(HostileCli, SuppressionsDevZeroIsRefused) {
  refused_by_report_and_run("/dev/zero", "is not a regular file");
}

TEST(HostileCli, SuppressionsDirectoryIsRefused) {
  TempDir dir;
  refused_by_report_and_run(dir.path(), "is a directory, not a file");
}

TEST(HostileCli, SuppressionsHugeFileIsRefused) {
  TempDir dir;
  write_file(dir.file("big.supp"), std::string(2u << 20, '#'));
  refused_by_report_and_run(dir.file("big.supp"), "is larger than 1 MiB");
}

TEST(HostileCli, SuppressionsBinaryFileErrorsEchoNoControlBytes) {
  TempDir dir;
  write_file(dir.file("esc.supp"), "leak:ok\n\x1b]0;owned\x07\n");
  Result r = connleak({"report", "--suppressions", dir.file("esc.supp"), golden("inputs")});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_TRUE(contains(
      r.err, dir.file("esc.supp") + ":2: expected 'leak:<pattern>', got '\\x1b]0;owned\\x07'"))
      << r.err;
  write_file(dir.file("nul.supp"), std::string("leak:a\nleak:b\0c\n", 16));
  Result nul = connleak({"report", "--suppressions", dir.file("nul.supp"), golden("inputs")});
  EXPECT_EQ(nul.exit_code, 2) << describe(nul);
  EXPECT_EQ(nul.err, "connleak: suppressions file " + dir.file("nul.supp") +
                         " is not a text file (a NUL byte on line 2)\n");
}

TEST(HostileCli, ReportOutputReplacesAPlantedSymlinkAndIsPrivate) {
  TempDir dir;
  write_file(dir.file("victim"), "precious\n");
  ASSERT_EQ(symlink(dir.file("victim").c_str(), dir.file("out.sarif").c_str()), 0);
  Result r = connleak({"report", "--format", "sarif", "-o", dir.file("out.sarif"), "--fail-on",
                       "never", golden("inputs")});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(read_file(dir.file("victim")), "precious\n");  // never written through
  struct stat st {};
  ASSERT_EQ(lstat(dir.file("out.sarif").c_str(), &st), 0);
  EXPECT_TRUE(S_ISREG(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_TRUE(contains(read_file(dir.file("out.sarif")), "\"version\": \"2.1.0\""));
}

TEST(HostileCli, DumpsAreOnUnderRunOnly) {
  // `connleak run` turns on the dump signal and the control socket (both need
  // the shim's thread, which a plain preloaded process does not start).
  Result r = connleak({"run", "--", "/bin/sh", "-c", "echo \"$CONNLEAK_OPTIONS\""},
                      {.env = {{"CONNLEAK_OPTIONS", "control=0"}}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  // Before the user's own options, so an exported control=0 still wins.
  EXPECT_TRUE(contains(r.out, "dump_signal=12:control=1:control=0")) << r.out;
}

}  // namespace
