// `connleak run` behaviour that needs no database: exit status, signals,
// command not found, the child's environment, temporary report directories.
#include <gtest/gtest.h>
#include <signal.h>

#include <filesystem>

#include "tests/cli/harness.h"

using namespace cli_test;

TEST(RunExit, StatusPassesThrough) {
  Result r = connleak({"run", "--", "/bin/sh", "-c", "exit 7"});
  EXPECT_EQ(r.exit_code, 7) << describe(r);
  Result ok = connleak({"run", "--", "true"});
  EXPECT_EQ(ok.exit_code, 0) << describe(ok);
}

TEST(RunExit, KilledBySignalIs128PlusSigno) {
  Result r = connleak({"run", "--", "/bin/sh", "-c", "kill -KILL $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGKILL) << describe(r);
  Result segv = connleak({"run", "--", "/bin/sh", "-c", "kill -SEGV $$"});
  EXPECT_EQ(segv.exit_code, 128 + SIGSEGV) << describe(segv);
}

TEST(RunExit, CommandNotFoundIs127WithOneLine) {
  Result r = connleak({"run", "--", "connleak-no-such-command", "arg"});
  EXPECT_EQ(r.exit_code, 127) << describe(r);
  EXPECT_EQ(r.err, "connleak: command not found: connleak-no-such-command\n");
  Result path = connleak({"run", "--", "/nonexistent/prog"});
  EXPECT_EQ(path.exit_code, 127) << describe(path);
}

TEST(RunExit, NotExecutableIs126) {
  TempDir dir;
  write_file(dir.file("script"), "#!/bin/sh\necho hi\n");  // mode 0644: not executable
  Result r = connleak({"run", "--", dir.file("script")});
  EXPECT_EQ(r.exit_code, 126) << describe(r);
  EXPECT_TRUE(contains(r.err, "Permission denied")) << r.err;
}

TEST(RunSignals, SigtermReachesTheChild) {
  Process p({cli_path(), "run", "--", "/bin/sh", "-c",
             "trap 'echo got-term; exit 0' TERM; echo ready; while :; do sleep 0.1; done"});
  ASSERT_EQ(p.read_line(), "ready");
  ASSERT_EQ(kill(p.pid(), SIGTERM), 0);
  Result r = p.wait(60);
  EXPECT_EQ(r.exit_code, 0) << describe(r);  // the child handled it and exited 0
  EXPECT_TRUE(contains(r.out, "got-term")) << describe(r);
}

TEST(RunSignals, EveryForwardedSignalArrives) {
  Process p({cli_path(), "run", "--", "/bin/sh", "-c",
             "for s in INT HUP QUIT USR1 USR2; do trap \"echo got-$s\" $s; done;"
             "trap 'echo got-TERM; exit 0' TERM; echo ready; while :; do sleep 0.1; done"});
  ASSERT_EQ(p.read_line(), "ready");
  for (auto [sig, name] : std::vector<std::pair<int, std::string>>{{SIGINT, "INT"},
                                                                   {SIGHUP, "HUP"},
                                                                   {SIGQUIT, "QUIT"},
                                                                   {SIGUSR1, "USR1"},
                                                                   {SIGUSR2, "USR2"}}) {
    ASSERT_EQ(kill(p.pid(), sig), 0);
    EXPECT_EQ(p.read_line(), "got-" + name);  // one at a time: signals of one kind coalesce
  }
  kill(p.pid(), SIGTERM);
  Result r = p.wait(60);
  EXPECT_EQ(r.exit_code, 0) << describe(r);
}

TEST(RunSignals, ChildKilledByAForwardedSignal) {
  Process p({cli_path(), "run", "--", "/bin/sh", "-c", "echo ready; while :; do sleep 0.1; done"});
  ASSERT_EQ(p.read_line(), "ready");
  kill(p.pid(), SIGTERM);
  Result r = p.wait(60);
  EXPECT_EQ(r.exit_code, 128 + SIGTERM) << describe(r);
}

TEST(RunEnvironment, ShimPreloadedAndFlagsMergedIntoExistingOptions) {
  TempDir dir;
  write_file(dir.file("s.supp"), "leak:nothing\n");
  Result r = connleak(
      {"run", "--threshold", "30s", "--txn-threshold", "250ms", "--report-dir", dir.file("reports"),
       "--suppressions", dir.file("s.supp"), "--", "/bin/sh", "-c",
       "echo \"$CONNLEAK_OPTIONS\"; echo \"$LD_PRELOAD\""},
      {.env = {{"CONNLEAK_OPTIONS", "verbosity=2:threshold=1h"}, {"LD_PRELOAD", "libm.so.6"}}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> out = lines(r.out);
  ASSERT_EQ(out.size(), 2u) << r.out;
  const std::string& options = out[0];
  // The user's options stay; each flag comes after them, so it wins.
  EXPECT_TRUE(contains(options, "verbosity=2:threshold=1h:threshold=30s:txn_threshold=250ms"))
      << options;
  EXPECT_TRUE(contains(options, ":report_dir=" + dir.file("reports"))) << options;
  EXPECT_TRUE(contains(options, ":suppressions=" + dir.file("s.supp"))) << options;
  EXPECT_EQ(out[1], shim_path() + " libm.so.6");
  EXPECT_TRUE(std::filesystem::is_directory(dir.file("reports")));
}

TEST(RunEnvironment, RelativePathsBecomeAbsoluteAndColonsAreQuoted) {
  // The command may change directory (make -C, a test runner): paths must not depend on it.
  TempDir dir;
  write_file(dir.file("s.supp"), "leak:x\n");
  Result r = connleak({"run", "--report-dir", "out/a:b", "--suppressions", "s.supp", "--",
                       "/bin/sh", "-c", "echo \"$CONNLEAK_OPTIONS\""},
                      {.cwd = dir.path()});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(
      r.out, ":report_dir=\"" + dir.file("out/a:b") + "\":suppressions=" + dir.file("s.supp")))
      << r.out;
  EXPECT_TRUE(std::filesystem::is_directory(dir.file("out/a:b")));
}

TEST(RunEnvironment, ExportedReportDirIsUsedAndKept) {
  TempDir dir;
  Result r = connleak({"run", "--", "/bin/sh", "-c", "echo \"$CONNLEAK_OPTIONS\""},
                      {.env = {{"CONNLEAK_OPTIONS", "report_dir=" + dir.file("mine")}}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "report_dir=" + dir.file("mine") + ":report_dir=" + dir.file("mine")))
      << r.out;
  EXPECT_TRUE(std::filesystem::is_directory(dir.file("mine")));
}

TEST(RunEnvironment, TemporaryReportDirIsRemoved) {
  TempDir tmp;
  Result r = connleak({"run", "--", "/bin/sh", "-c", "echo \"$CONNLEAK_OPTIONS\""},
                      {.env = {{"TMPDIR", tmp.path()}}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(contains(r.out, "report_dir=" + tmp.path() + "/connleak-run-")) << r.out;
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
  Result missing =
      connleak({"run", "--", "connleak-no-such-command"}, {.env = {{"TMPDIR", tmp.path()}}});
  EXPECT_EQ(missing.exit_code, 127);
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path()));
}

TEST(RunEnvironment, StdinAndStdoutAreInherited) {
  Result r = connleak({"run", "--", "cat"}, {.stdin_data = "through the pipe\n"});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_EQ(r.out, "through the pipe\n");
}

TEST(RunEnvironment, BadSuppressionsFileStopsBeforeTheCommandRuns) {
  TempDir dir;
  write_file(dir.file("bad.supp"), "leak:\n");
  Result r =
      connleak({"run", "--suppressions", dir.file("bad.supp"), "--", "/bin/sh", "-c", "echo ran"});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "connleak: " + dir.file("bad.supp") + ":1: empty pattern in 'leak:'\n");
}
