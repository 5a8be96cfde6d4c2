// Hostile hosts (issue 20): nothing a program does or feeds us may kill it,
// hang it, change its exit status or put a password in any output. Real
// programs under the shim against the test server; every output and every file
// is searched for the planted secrets.
#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "tests/e2e/harness.h"

namespace e2e {
namespace {

namespace fs = std::filesystem;

const std::string kLatin1 = "caf\xe9";  // "café" in ISO-8859-1: not UTF-8

std::string hostile() {
  return bin("hostile_pq");
}

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// `connleak ARGS...` without the shim, output captured.
Result cli(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {CONNLEAK_CLI_PATH};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, {.preload = false, .timeout_seconds = 60});
}

// Everything a run left behind: stdout, stderr and every file in its report dir.
std::string everything(const Result& r) {
  std::string all = r.out + "\n" + r.err + "\n";
  for (const std::string& f : r.files) all += slurp(r.report_dir + "/" + f) + "\n";
  return all;
}

// --- 1: non-UTF-8 bytes -------------------------------------------------------

// The program lives in a directory named in Latin-1, so module paths in every
// stack carry the byte too.
std::string latin1_copy_of_hostile(const std::string& dir) {
  std::string sub = dir + "/bin-" + kLatin1;
  fs::create_directories(sub);
  fs::copy_file(hostile(), sub + "/hostile_pq", fs::copy_options::overwrite_existing);
  return sub + "/hostile_pq";
}

class TempDir {
 public:
  TempDir() {
    char t[] = "/tmp/connleak-hostile-XXXXXX";
    path_ = mkdtemp(t);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST(Hostile, NonUtf8ArgvPathDbnameAndUserNeverAbortTheHost) {
  TempDir tmp;
  const std::string prog = latin1_copy_of_hostile(tmp.path());
  Session s({prog, kLatin1}, {.options = "dump_signal=12:control=1"});
  s.send("leak");
  ASSERT_TRUE(s.wait_out("ok leak")) << s.err();
  // A failed connect left unfinished: its target holds the Latin-1 dbname and user.
  s.send("params db" + kLatin1 + " us" + kLatin1);
  ASSERT_TRUE(s.wait_out("ok params")) << s.err();

  // The signal dump.
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  // The control-socket dump.
  Result dump = cli({"dump", std::to_string(s.pid())});
  EXPECT_EQ(dump.exit_code, 0) << describe(dump);
  // The reply is JSON, where the byte became U+FFFD; never the raw byte.
  EXPECT_NE(dump.out.find("caf\xEF\xBF\xBD"), std::string::npos) << dump.out;
  EXPECT_EQ(dump.out.find(kLatin1), std::string::npos) << dump.out;
  Result dump_json = cli({"dump", "--format", "json", std::to_string(s.pid())});
  EXPECT_EQ(dump_json.exit_code, 0) << describe(dump_json);
  EXPECT_NO_THROW(json::parse(dump_json.out)) << dump_json.out;

  s.send("exit 7");
  ASSERT_TRUE(s.wait_out("ok exit"));
  Result r = s.finish();
  EXPECT_EQ(r.exit_code, 7) << describe(r);  // the host's own status, not SIGABRT's 134
  const json& rep = report_of(r);            // valid JSON: the byte became U+FFFD
  EXPECT_EQ(rep.at("argv").at(1), "caf\xEF\xBF\xBD");
  auto leaked = with_status(rep, "leaked");
  ASSERT_EQ(leaked.size(), 2u) << describe(r);
  EXPECT_NE(leaked[1].at("target").get<std::string>().find("dbname=dbcaf\xEF\xBF\xBD"),
            std::string::npos);
  EXPECT_NE(r.err.find("detected connection leaks"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("caf\\xe9"), std::string::npos) << r.err;  // the shim's own text: escaped
  EXPECT_EQ(r.err.find(kLatin1), std::string::npos) << "raw Latin-1 on stderr:\n" << r.err;

  // `connleak report` reads it in every format, and also a file whose bytes
  // were never made UTF-8 (written by an older shim).
  std::string raw = r.report_text;
  for (std::size_t at; (at = raw.find("\xEF\xBF\xBD")) != std::string::npos;)
    raw.replace(at, 3, "\xe9");
  const std::string raw_path = tmp.path() + "/connleak.99999.json";
  std::ofstream(raw_path, std::ios::binary) << raw;
  for (const std::string& input :
       {r.report_dir + "/connleak." + std::to_string(r.pid) + ".json", raw_path}) {
    for (const char* format : {"text", "json", "sarif", "junit"}) {
      Result rep_run = cli({"report", "--format", format, input});
      EXPECT_EQ(rep_run.exit_code, 23) << format << " " << input << "\n" << describe(rep_run);
      EXPECT_EQ(rep_run.out.find(kLatin1), std::string::npos) << format << ": " << rep_run.out;
      EXPECT_NE(rep_run.out.find("caf"), std::string::npos) << format << ": " << rep_run.out;
    }
  }
}

// --- 2: _exit from a signal handler -----------------------------------------

TEST(Hostile, ExitFromASignalHandlerDuringMallocNeverHangs) {
  int with_report = 0;
  for (int i = 0; i < 20; ++i) {
    // The harness waits on the child with a deadline (pidfd + poll): a
    // deadlocked host is killed and fails here instead of hanging the suite.
    Result r = run({bin("exit_in_handler")}, {.options = "control=1", .timeout_seconds = 20});
    ASSERT_EQ(r.exit_code, 42) << "run " << i << ": " << describe(r);
    if (r.report) {
      ++with_report;
      EXPECT_EQ(with_status(*r.report, "leaked").size(), 1u) << describe(r);
    } else {
      EXPECT_NE(r.err.find("connleak: _exit() in a signal handler"), std::string::npos)
          << describe(r);
    }
  }
  // The worker thread (running: the control socket asks for it, as under
  // `connleak run`) writes the report on the handler's behalf.
  EXPECT_EQ(with_report, 20);
}

// Without a worker thread (the default: no option asks for one) nothing
// may be written in the handler: the host still leaves with its status, and
// says why the report is missing.
TEST(Hostile, ExitFromASignalHandlerWithoutTheThreadSaysWhy) {
  Result r = run({bin("exit_in_handler")}, {.timeout_seconds = 20});
  ASSERT_EQ(r.exit_code, 42) << describe(r);
  EXPECT_FALSE(r.report) << describe(r);
  EXPECT_NE(r.err.find("connleak: _exit() in a signal handler and no worker thread"),
            std::string::npos)
      << describe(r);
}

// --- 3: password fragments in targets -----------------------------------------

struct Planted {
  std::string password;
  std::vector<std::string> fragments;  // every piece libpq could split off
};

const std::vector<Planted>& planted() {
  static const std::vector<Planted> list = {
      {"Zq7sec@Xr9ret", {"Zq7sec", "Xr9ret"}},
      {"Kp4pa/Ss8vv", {"Kp4pa", "Ss8vv"}},
      {"Pw3q:Wz5@Xk6/Yj7", {"Pw3q", "Wz5", "Xk6", "Yj7"}},
  };
  return list;
}

void expect_no_fragment(const std::string& where, const std::string& text) {
  for (const Planted& p : planted())
    for (const std::string& f : p.fragments)
      EXPECT_EQ(text.find(f), std::string::npos)
          << "'" << f << "' of '" << p.password << "' in " << where << ":\n"
          << text;
}

TEST(Hostile, PasswordsWithAtOrSlashNeverShowInAnyOutput) {
  const std::string hostport = pg("HOST") + ":" + pg("PORT");
  Session s({hostile()}, {.options = "verbosity=2:threshold=50ms:dump_signal=12:control=1"});
  int n = 0;
  for (const Planted& p : planted()) {
    const std::string uri = "postgresql://u:" + p.password + "@" + hostport + "/postgres";
    s.send("connect " + uri);  // fails and is kept: a failed connect left unfinished
    s.send("start " + uri);    // never polled, never finished
    n += 2;
  }
  // The password as an argument too, as a CLI would take it.
  ASSERT_TRUE(s.wait_out("ok start", 3)) << s.err();
  // An alert names every connection's target.
  ASSERT_TRUE(s.wait_err("connleak: WARNING", 1)) << s.err();
  ASSERT_EQ(kill(s.pid(), SIGUSR2), 0);
  ASSERT_TRUE(s.wait_err("connleak: dump (signal)")) << s.err();
  Result dump = cli({"dump", std::to_string(s.pid())});
  EXPECT_EQ(dump.exit_code, 0) << describe(dump);
  expect_no_fragment("connleak dump", dump.out + dump.err);
  s.send("exit 0");
  ASSERT_TRUE(s.wait_out("ok exit"));
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const json& rep = report_of(r);
  EXPECT_EQ(with_status(rep, "leaked").size(), static_cast<std::size_t>(n)) << describe(r);
  // The canary: the targets are there, only the passwords are not.
  EXPECT_NE(r.err.find("connleak: libpq connection"), std::string::npos)
      << r.err;  // verbosity=2 lines
  EXPECT_NE(r.report_text.find("user=u"), std::string::npos) << r.report_text;
  expect_no_fragment("stderr, stdout and report files", everything(r));
  for (const char* format : {"text", "json", "sarif", "junit"}) {
    Result rr = cli({"report", "--format", format, r.report_dir});
    EXPECT_EQ(rr.exit_code, 23) << describe(rr);
    expect_no_fragment(std::string("connleak report --format ") + format, rr.out + rr.err);
  }
}

// A pool's connections share host, port, dbname and user, so the shim formats
// their target once (collector/policy/target_memo.h). The password is part of
// what the memo remembers it under: a connection whose password is the
// dbname's text gets a target without the dbname, its neighbours on the same
// thread with the real password get theirs with it, in any order.
TEST(Hostile, SameTargetDifferentPasswordsEachRedactedForItsOwnPassword) {
  const std::string base = "host=" + pg("HOST") + " port=" + pg("PORT") +
                           " dbname=" + pg("APP_DB") + " user=" + pg("APP_USER");
  const std::string good = base + " password=" + pg("APP_PASSWORD");
  const std::string bad = base + " password=" + pg("APP_DB");  // the dbname's own text
  Session s({hostile()}, {.options = "verbosity=2"});
  int sent = 0;
  for (const std::string& conninfo : {good, bad, good, bad, bad, good}) {
    s.send("connect " + conninfo);
    ASSERT_TRUE(s.wait_out("ok connect\n", ++sent)) << s.err();
  }
  s.send("exit 0");
  ASSERT_TRUE(s.wait_out("ok exit"));
  Result r = s.finish();
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  const std::string shown = "host=" + pg("HOST") + " port=" + pg("PORT") +
                            " dbname=" + pg("APP_DB") + " user=" + pg("APP_USER");
  const std::string without_db =
      "host=" + pg("HOST") + " port=" + pg("PORT") + " user=" + pg("APP_USER");
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 6u) << describe(r);
  int connected = 0, failed = 0;
  for (const json& c : leaked) {
    // The real password authenticates; the dbname's text does not.
    if (c.at("state") == "connected") {
      ++connected;
      EXPECT_EQ(c.at("target"), shown) << c.dump();
    } else {
      ++failed;
      EXPECT_EQ(c.at("state"), "failed") << c.dump();
      EXPECT_EQ(c.at("target"), without_db) << c.dump();
    }
  }
  EXPECT_EQ(connected, 3);
  EXPECT_EQ(failed, 3);
  EXPECT_EQ(everything(r).find(pg("APP_PASSWORD")), std::string::npos) << describe(r);
}

// MySQL's passwd argument is never looked at for the target, except to leave
// out a field that holds it.
TEST(Hostile, MysqlPasswordAlsoInUserAndDbnameNeverShows) {
  const std::string pw = "Mq9SamePw";
  Result r =
      run({bin("hostile_mysql")}, {.options = "verbosity=2", .env = {{"HOSTILE_MYSQL_PW", pw}}});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  auto leaked = with_status(report_of(r), "leaked");
  ASSERT_EQ(leaked.size(), 1u) << describe(r);
  EXPECT_NE(leaked[0].at("target").get<std::string>().find("host=127.0.0.1"),
            std::string::npos);  // canary
  EXPECT_EQ(everything(r).find(pw), std::string::npos) << describe(r);
}

// --- 4: argv scrubbing under `connleak run` ------------------------------------

TEST(Hostile, CommandLinePasswordsNeverShowUnderConnleakRun) {
  TempDir tmp;
  const std::string secret = "Hq8Argv5ecret";
  // hostile_pq ignores its arguments; they are only there to be scrubbed.
  Result r =
      run({"/bin/sh", "-c", "echo leak | \"$0\" \"$@\"", CONNLEAK_CLI_PATH, "run", "--report-dir",
           tmp.path(), "--", hostile(), "--password", secret, "--passwd", secret, "--pgpassword",
           secret, "-p" + secret, "--password=" + secret, "{\"password\": \"" + secret + "\"}"},
          {.preload = false});
  EXPECT_EQ(r.exit_code, 23) << describe(r);  // the connection leaked: the canary
  EXPECT_NE(r.err.find("connleak run: merged summary"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--password ***"), std::string::npos) << r.err;
  std::string all = r.out + r.err;
  for (const auto& entry : fs::directory_iterator(tmp.path())) all += slurp(entry.path());
  EXPECT_EQ(all.find(secret), std::string::npos) << all;
}

// --- 8: a stderr pipe whose reader is gone ------------------------------------

// Runs argv with stderr on a pipe that has no reader at all (closed before the
// fork), stdout on /dev/null; returns the wait status. Bounded by a pidfd poll.
int run_with_dead_stderr_pipe(const std::vector<std::string>& argv, const std::string& options,
                              bool preload) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe");
  close(fds[0]);
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : pg_env()) env_strings.push_back(k + "=" + v);
  if (preload) {
    env_strings.push_back(std::string("LD_PRELOAD=") + CONNLEAK_SHIM_PATH);
    env_strings.push_back("CONNLEAK_OPTIONS=" + options);
  }
  std::vector<char*> envp, args;
  for (std::string& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  std::vector<std::string> argv_copy = argv;
  for (std::string& a : argv_copy) args.push_back(a.data());
  args.push_back(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    dup2(null, 1);
    dup2(fds[1], 2);
    signal(SIGPIPE, SIG_DFL);
    execve(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(fds[1]);
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd pfd{pidfd, POLLIN, 0};
  if (pidfd < 0 || poll(&pfd, 1, 60'000) <= 0) kill(pid, SIGKILL);
  if (pidfd >= 0) close(pidfd);
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

TEST(Hostile, ExitReportToADeadStderrPipeDoesNotKillTheHost) {
  // Canary: the setup does deliver SIGPIPE to a writer that does not guard.
  int canary = run_with_dead_stderr_pipe({"/bin/sh", "-c", "echo x >&2; exit 0"}, "", false);
  ASSERT_TRUE(WIFSIGNALED(canary) && WTERMSIG(canary) == SIGPIPE) << canary;
  // A leak report and a clean line, both written into the dead pipe.
  TempDir tmp;
  for (const char* scenario : {"leak", "clean"}) {
    int status = run_with_dead_stderr_pipe({bin("pq_scenarios"), scenario},
                                           "verbosity=1:report_dir=" + tmp.path(), true);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
        << scenario << ": status " << status << (WIFSIGNALED(status) ? " (signal)" : "");
  }
  EXPECT_FALSE(list_reports(tmp.path()).empty());  // the reports were still written
}

// --- 13: control characters, bad counters, huge files, killed commands ---------

TEST(Hostile, ConnleakReportRejectsNegativeCountersAndHugeFiles) {
  TempDir tmp;
  const std::string neg = tmp.path() + "/connleak.1.json";
  std::ofstream(neg)
      << R"({"tool":"connleak","version":"0","pid":1,"ppid":0,"argv":["x"],"trigger":"exit",)"
      << R"("summary":{"opened":1,"closed":0,"open":1,"leaked":-5,"flagged":0},"connections":[]})";
  Result r = cli({"report", neg});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.out.find("18446744073709551611"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("\"leaked\" is not an integer from 0"), std::string::npos) << r.err;

  const std::string huge = tmp.path() + "/connleak.2.json";
  {
    std::ofstream out(huge);
    out << R"({"tool":"connleak","argv":[")";
    std::string chunk(1 << 20, 'a');
    for (int i = 0; i < 65; ++i) out << chunk;
    out << R"("]})";
  }
  Result h = cli({"report", huge});
  EXPECT_EQ(h.exit_code, 2) << describe(h);
  EXPECT_NE(h.err.find("is larger than 64 MiB"), std::string::npos) << h.err;
}

TEST(Hostile, ForgedLinesAndEscapesInAReportArePrintedEscaped) {
  TempDir tmp;
  const std::string path = tmp.path() + "/connleak.3.json";
  json doc = {
      {"tool", "connleak"},
      {"version", "0"},
      {"pid", 3},
      {"argv", {"prog\x1b]0;owned\x07"}},
      {"trigger", "exit"},
      {"summary", {{"opened", 1}, {"closed", 0}, {"open", 1}, {"leaked", 1}, {"flagged", 0}}},
      {"connections",
       {{{"id", 1},
         {"library", "libpq"},
         {"handle", "0x1"},
         {"target", "host=h\x1b[2J"},
         {"status", "leaked"},
         {"acquired",
          {{"native",
            {{{"address", "0x1"},
              {"module", "/m"},
              {"function", "f\n\nSUMMARY: connleak: no leaks"},
              {"file", nullptr},
              {"line", nullptr}}}}}}}}}};
  std::ofstream(path) << doc.dump();
  Result r = cli({"report", path});
  EXPECT_EQ(r.exit_code, 23) << describe(r);
  EXPECT_EQ(r.out.find('\x1b'), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("\nSUMMARY: connleak: no leaks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("f\\n\\nSUMMARY: connleak: no leaks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("SUMMARY: connleak: 1 leaked connection(s)"), std::string::npos) << r.out;
}

TEST(Hostile, ConnleakRunSaysWhenTheCommandWasKilledBeforeReporting) {
  Result r = cli({"run", "--", "/bin/sh", "-c", "kill -SEGV $$"});
  EXPECT_EQ(r.exit_code, 128 + SIGSEGV) << describe(r);
  EXPECT_EQ(r.err.find("no leaks"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("was killed by signal 11 (SIGSEGV) and wrote no report"), std::string::npos)
      << r.err;
}

TEST(Hostile, UnknownOptionKeysPrintAFewLinesAndACount) {
  std::string options;
  for (int i = 0; i < 12000; ++i)
    options += "k" + std::to_string(i) + "=1:";  // under 128 KiB, the kernel's limit
  Result r = run({bin("pq_scenarios"), "clean"}, {.options = options});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_LE(count(r.err, "\n"), 8) << r.err.substr(0, 2000);
  EXPECT_NE(r.err.find("more option warnings not shown"), std::string::npos)
      << r.err.substr(0, 2000);
}

// --- 14: silent when clean ------------------------------------------------------

TEST(Hostile, ACleanProcessLeavesStderrUntouched) {
  Result r = run({bin("pq_scenarios"), "clean"});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(r.err, "");
  EXPECT_EQ(summary(r, "opened"), 3u);               // the hooks ran: the report file says so
  Result leak = run({bin("pq_scenarios"), "leak"});  // canary: a leak is still reported
  EXPECT_NE(leak.err.find("detected connection leaks"), std::string::npos) << leak.err;
}

}  // namespace
}  // namespace e2e
