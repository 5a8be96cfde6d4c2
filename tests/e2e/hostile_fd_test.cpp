// Hostile hosts, part b: a host that closes and reuses the shim's descriptors,
// a squatted control socket, refused dump signals, the same pid in two pid
// namespaces sharing a report directory, untrusted or relative report_dir,
// suppressions= that is not a regular file, and Python 3.12+'s fork warning.
// Real programs under the shim against the real PostgreSQL fixture.
#include <dirent.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

Result connleak_cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CONNLEAK_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {.preload = false});
}

std::vector<int> numbers_after(const std::string& text, const std::string& word) {
  std::vector<int> out;
  auto at = text.find(word + " ");
  if (at == std::string::npos) return out;
  std::istringstream in(text.substr(at + word.size(), text.find('\n', at) - at - word.size()));
  for (int n; in >> n;) out.push_back(n);
  return out;
}

// --- the host closes the shim's descriptors and reuses their numbers -------

void closes_everything_then_reuses_the_numbers(const std::string& how) {
  Session s({bin("fd_hostile")}, {.options = "dump_signal=12:control=1"});
  ASSERT_TRUE(s.command("open")) << s.err();
  ASSERT_TRUE(s.command(how)) << s.err();
  // The shim's pipe and control socket were there, above the floor (below it:
  // libpq's socket and whatever the test runner let the program inherit).
  std::vector<int> found = numbers_after(s.out(), "found");
  int high = 0;
  for (int fd : found) high += fd >= 900;
  EXPECT_GE(high, 3) << s.out();  // pipe read end, write end, control socket

  // A dump by signal, then one by `connleak dump`: both after the host took
  // the numbers over.
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  Result asked = connleak_cli({"dump", "--format", "json", std::to_string(s.pid())});
  EXPECT_EQ(asked.exit_code, 0) << describe(asked);
  if (asked.exit_code == 0) {
    json dump = json::parse(asked.out);
    EXPECT_EQ(dump.at("pid"), s.pid());
    EXPECT_EQ(with_status(dump, "open").size(), 1u) << asked.out;
  }
  // Nothing read from or written to the host's descriptors by anyone else.
  ASSERT_TRUE(s.command("check")) << s.err();
  EXPECT_NE(s.out().find("check stolen=0 foreign=0\n"), std::string::npos) << s.out();
  Result r = s.finish();
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
}

TEST(HostileFd, ClosefromThenReusedNumbersGetNoForeignBytesAndDumpsStillWork) {
  closes_everything_then_reuses_the_numbers("closefrom");
}

TEST(HostileFd, CloseRangeThenReusedNumbersGetNoForeignBytesAndDumpsStillWork) {
  closes_everything_then_reuses_the_numbers("close_range");
}

TEST(HostileFd, SubprocessChildrenClosingTheirCopiesLeaveOursAlone) {
  // Python's subprocess (close_fds=True) runs close_range in a vfork child
  // that shares our memory: those closes are the child's, not the host's.
  std::string prog =
      "import os, subprocess, psycopg2\n"
      "c = psycopg2.connect(os.environ['CONNLEAK_TEST_PG_CONNINFO'])\n"
      "before = sorted(os.listdir('/proc/self/fd'))\n"
      "for _ in range(5): subprocess.run(['/bin/true'], check=True)\n"
      "print('same' if sorted(os.listdir('/proc/self/fd')) == before else 'changed', flush=True)\n"
      "input()\n"
      "c.close()\n";
  Session s({"/usr/bin/python3", "-c", prog}, {.options = "control=1"});
  ASSERT_TRUE(s.wait_out("\n")) << s.err();
  EXPECT_EQ(s.out(), "same\n");
  Result asked = connleak_cli({"dump", std::to_string(s.pid())});
  EXPECT_EQ(asked.exit_code, 0) << describe(asked);
  s.send("");
  EXPECT_EQ(s.finish().exit_code, 0);
}

// --- someone else holds @connleak.<pid> --------------------------------------

TEST(HostileFd, SquattedControlSocketIsRefusedAndTheShimSaysSo) {
  Session s({"/usr/bin/python3", script("squat_control.py"), bin("pq_interactive")},
            {.options = "control=1"});
  ASSERT_TRUE(s.wait_out("\n")) << s.err();  // "squatting <pid>", its first line
  std::vector<int> pid = numbers_after(s.out(), "squatting");
  ASSERT_EQ(pid.size(), 1u) << s.out();
  ASSERT_TRUE(s.command("open 0")) << s.err();
  ASSERT_TRUE(s.wait_err("is taken by another process")) << s.err();
  Result asked = connleak_cli({"dump", std::to_string(pid[0])});
  EXPECT_EQ(asked.exit_code, 2) << describe(asked);
  EXPECT_EQ(asked.out, "") << describe(asked);  // nothing forged reaches the terminal
  EXPECT_NE(
      asked.err.find("control socket @connleak." + std::to_string(pid[0]) + " is held by process "),
      std::string::npos)
      << asked.err;
  EXPECT_NE(asked.err.find("refusing to talk to it"), std::string::npos) << asked.err;
  EXPECT_EQ(count(asked.err, "\n"), 1) << asked.err;
  ASSERT_TRUE(s.command("close 0"));
  s.send("exit");
  Result r = s.finish();
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "cannot serve `connleak dump"), 1) << r.err;
}

// --- dump_signal accepts SIGUSR1, SIGUSR2 and real-time signals only --------

TEST(HostileFd, TerminatingDumpSignalIsRefusedAndKeepsItsDefaultAction) {
  Session s({bin("pq_interactive")}, {.options = "dump_signal=15"});
  ASSERT_TRUE(s.command("open 0")) << s.err();
  ASSERT_EQ(kill(s.pid(), SIGTERM), 0);  // no handler of ours: the program dies as it would
  Result r = s.finish();
  EXPECT_EQ(r.signal, SIGTERM) << describe(r);
  EXPECT_EQ(count(r.err, "ignoring option 'dump_signal=15'"), 1) << r.err;
  EXPECT_EQ(r.err.find("dump (signal)"), std::string::npos) << r.err;
}

TEST(HostileFd, RealTimeDumpSignalWorks) {
  // The canary of the test above: an accepted signal does dump.
  Session s({bin("pq_interactive")}, {.options = "dump_signal=40"});
  ASSERT_TRUE(s.command("open 0")) << s.err();
  ASSERT_EQ(kill(s.pid(), 40), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  ASSERT_TRUE(s.command("close 0"));
  s.send("exit");
  Result r = s.finish();
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err.find("ignoring option"), std::string::npos) << r.err;
}

// --- the same pid in two pid namespaces, one report directory ---------------

TEST(HostileFd, SamePidInTwoPidNamespacesKeepsBothReports) {
  if (access("/usr/bin/unshare", X_OK) != 0) GTEST_SKIP() << "no /usr/bin/unshare";
  Result probe =
      run({"/usr/bin/unshare", "-p", "-f", "--mount-proc", "/bin/true"}, {.preload = false});
  if (probe.exit_code != 0) GTEST_SKIP() << "cannot create pid namespaces here: " << probe.err;
  char tmpl[] = "/tmp/connleak-pidns-XXXXXX";
  std::string shared = mkdtemp(tmpl);
  // Each host is pid 1 of its own namespace, so both want connleak.1.json.
  for (int i = 0; i < 2; ++i) {
    Result r = run({"/usr/bin/unshare", "-p", "-f", "--mount-proc", bin("pq_scenarios"), "leak"},
                   {.options = "report_dir=" + shared});
    ASSERT_EQ(r.exit_code, 0) << describe(r);
  }
  std::vector<std::string> names = list_reports(shared);
  ASSERT_EQ(names.size(), 2u) << ::testing::PrintToString(names);
  EXPECT_NE(std::find(names.begin(), names.end(), "connleak.1.json"), names.end())
      << ::testing::PrintToString(names);
  std::regex tagged(R"(connleak\.1\.\d+-\d+\.json)");
  int tagged_count = 0;
  for (const std::string& n : names) tagged_count += std::regex_match(n, tagged);
  EXPECT_EQ(tagged_count, 1) << ::testing::PrintToString(names);
  for (const std::string& n : names) {
    auto report = read_report(shared + "/" + n);
    ASSERT_TRUE(report) << n;
    EXPECT_EQ(report->at("pid"), 1);
    EXPECT_EQ(report->at("summary").at("leaked"), 1);
  }
  // `connleak report DIR` reads both.
  Result merged = connleak_cli({"report", "--format", "json", shared});
  EXPECT_EQ(merged.exit_code, 23) << describe(merged);
  EXPECT_EQ(json::parse(merged.out).at("summary").at("leaked"), 2) << merged.out;
  std::string cmd = "rm -rf '" + shared + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// --- report_dir -------------------------------------------------------------

TEST(HostileFd, ReportDirWritableByOthersIsRefusedWithOneWarning) {
  char tmpl[] = "/tmp/connleak-open-dir-XXXXXX";
  std::string dir = mkdtemp(tmpl);
  ASSERT_EQ(chmod(dir.c_str(), 0777), 0);
  Session s({bin("pq_interactive")}, {.options = "report_dir=" + dir});
  ASSERT_TRUE(s.command("open 0"));
  ASSERT_TRUE(s.command("dump"));
  ASSERT_TRUE(s.command("dump"));
  s.send("exit");
  Result done = s.finish();
  EXPECT_EQ(done.exit_code, 0) << describe(done);
  EXPECT_EQ(count(done.err, "not writing JSON reports to report_dir: " + dir +
                                " is writable by other users and has no sticky bit"),
            1)
      << done.err;
  EXPECT_EQ(count(done.err, "connleak: dump (request)"), 2) << done.err;  // stderr still has them
  EXPECT_TRUE(list_reports(dir).empty()) << ::testing::PrintToString(list_reports(dir));
  // The canary: the same directory made private takes the report.
  ASSERT_EQ(chmod(dir.c_str(), 0700), 0);
  Result ok = run({bin("pq_scenarios"), "leak"}, {.options = "report_dir=" + dir});
  EXPECT_EQ(ok.exit_code, 0) << describe(ok);
  EXPECT_EQ(list_reports(dir).size(), 1u);
  std::string cmd = "rm -rf '" + dir + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

TEST(HostileFd, RelativeReportDirIsResolvedWhereTheProgramStarted) {
  char tmpl[] = "/tmp/connleak-rel-XXXXXX";
  std::string start = mkdtemp(tmpl);
  std::string elsewhere = start + "/elsewhere";
  ASSERT_EQ(mkdir(elsewhere.c_str(), 0700), 0);
  // Connects, leaks, then changes directory before exiting.
  std::string prog =
      "import os, psycopg2\n"
      "c = psycopg2.connect(os.environ['CONNLEAK_TEST_PG_CONNINFO'])\n"
      "os.chdir('elsewhere')\n"
      "os._exit(0)\n";
  Result r = run({"/bin/sh", "-c", "cd '" + start + "' && exec /usr/bin/python3 -c \"$0\"", prog},
                 {.options = "report_dir=rel"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  std::vector<std::string> at_start = list_reports(start + "/rel");
  ASSERT_EQ(at_start.size(), 1u) << describe(r);
  EXPECT_EQ(at_start[0], "connleak." + std::to_string(r.pid) + ".json");
  EXPECT_TRUE(list_reports(elsewhere).empty());
  std::string cmd = "rm -rf '" + start + "'";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
}

// --- suppressions= that is not a regular file ---------------------------------

void suppressions_refused(const std::string& path, const std::string& why) {
  // The exit report reads the file: a FIFO used to hang the host right there.
  Result r = run({bin("pq_scenarios"), "leak"},
                 {.options = "suppressions=" + path, .timeout_seconds = 30});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "ignoring option 'suppressions="), 1) << r.err;
  EXPECT_NE(r.err.find(why), std::string::npos) << r.err;
  EXPECT_EQ(summary(r, "leaked"), 1u);  // unsuppressed, reported as usual
}

TEST(HostileFd, SuppressionsFifoNeverHangsTheHost) {
  std::string fifo = "/tmp/connleak-supp-fifo-" + std::to_string(getpid());
  ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
  suppressions_refused(fifo, "is not a regular file");
  unlink(fifo.c_str());
}

TEST(HostileFd, SuppressionsDevZeroIsRefused) {
  suppressions_refused("/dev/zero", "is not a regular file");
}

TEST(HostileFd, SuppressionsDirectoryIsRefused) {
  suppressions_refused("/tmp", "is a directory");
}

TEST(HostileFd, SuppressionsBinaryFileWarningHasNoControlBytes) {
  std::string bin_file = "/tmp/connleak-supp-bin-" + std::to_string(getpid());
  std::ofstream(bin_file) << "leak:ok\n\x1b]0;owned\x07:x\n";
  Result r = run({bin("pq_scenarios"), "leak"}, {.options = "suppressions=" + bin_file});
  unlink(bin_file.c_str());
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(count(r.err, "ignoring option 'suppressions="), 1) << r.err;
  EXPECT_EQ(r.err.find('\x1b'), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find('\x07'), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("\\x1b]0;owned\\x07"), std::string::npos) << r.err;
}

// --- Python 3.12+: no thread of ours unless an option needs one ---------------

std::vector<std::string> pyenv_pythons(const std::string& minor) {
  std::vector<std::string> found;
  std::string root = getenv("PYENV_ROOT")
                         ? getenv("PYENV_ROOT")
                         : std::string(getenv("HOME") ? getenv("HOME") : "/root") + "/.pyenv";
  if (DIR* d = opendir((root + "/versions").c_str())) {
    while (dirent* e = readdir(d)) {
      std::string v = e->d_name;
      std::string py = root + "/versions/" + v + "/bin/python3";
      if (v.rfind(minor + ".", 0) == 0 && access(py.c_str(), X_OK) == 0) found.push_back(py);
    }
    closedir(d);
  }
  return found;
}

void fork_after_connect_is_warning_free(const std::string& minor) {
  std::vector<std::string> pythons = pyenv_pythons(minor);
  if (pythons.empty()) GTEST_SKIP() << "no Python " << minor << " under pyenv";
  for (const std::string& py : pythons) {
    SCOPED_TRACE(py);
    Result r = run({py, "-W", "error::DeprecationWarning", script("fork_after_connect.py")},
                   {.options = "quiet=1:verbosity=0"});
    EXPECT_EQ(r.exit_code, 0) << describe(r);
    EXPECT_NE(r.out.find("threads 1\n"), std::string::npos) << describe(r);
    EXPECT_NE(r.out.find("done\n"), std::string::npos) << describe(r);
    EXPECT_EQ(r.err, "") << describe(r);
    EXPECT_EQ(summary(r, "opened"), 1u) << describe(r);  // tracked all the same

    // The canary: an option that needs the thread starts it, its alert fires,
    // and the interpreter does notice the thread at fork().
    Session s({py, "-W", "default::DeprecationWarning", script("fork_after_connect.py"), "wait"},
              {.options = "threshold=200ms"});
    ASSERT_TRUE(s.wait_out("\n")) << s.err();  // "threads N", its first line
    EXPECT_NE(s.out().find("threads 2\n"), std::string::npos) << s.out();
    ASSERT_TRUE(s.wait_err("flagged lifetime after")) << s.err();
    s.send("go");
    Result canary = s.finish();
    EXPECT_EQ(canary.exit_code, 0) << describe(canary);
    EXPECT_NE(canary.err.find("DeprecationWarning: This process"), std::string::npos) << canary.err;
  }
}

TEST(HostileFd, Python312ForkAfterConnectHasNoThreadWarning) {
  fork_after_connect_is_warning_free("3.12");
}

TEST(HostileFd, Python313ForkAfterConnectHasNoThreadWarning) {
  fork_after_connect_is_warning_free("3.13");
}

}  // namespace
}  // namespace e2e
