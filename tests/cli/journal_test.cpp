// The crash-safe journal (issue 16): programs under the shim holding real
// connections to the test server die the ways services die (SIGKILL, abort(),
// SIGSEGV), and `connleak report` / `connleak run` still say which connections
// were open and where they were opened.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

// The line of the marker comment in journal_victim.c: where that function connects.
int marker_line(const std::string& marker) {
  auto all = lines(read_file(source_dir() + "/tests/cli/programs/journal_victim.c"));
  for (std::size_t i = 0; i < all.size(); ++i)
    if (contains(all[i], marker)) return static_cast<int>(i + 1);
  ADD_FAILURE() << "marker " << marker << " not found";
  return -1;
}

Options under_shim(const std::string& dir, const std::string& extra = "") {
  return {.env = {{"LD_PRELOAD", shim_path()},
                  {"CONNLEAK_OPTIONS", "report_dir=" + dir + ":print_report=0" + extra}},
          .pg = true};
}

std::vector<std::string> journals_in(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".journal") out.push_back(e.path().string());
  return out;
}

// A string field of a report object; "" when absent or null.
std::string text_of(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

// The frame of `function` in a connection's native stack, or null.
const json* frame_of(const json& connection, const std::string& function) {
  for (const json& f : connection["acquired"]["native"])
    if (text_of(f, "function") == function) return &f;
  return nullptr;
}

// What every death must leave: alpha and gamma open, beta closed, each at its line.
void expect_alpha_and_gamma(const json& doc, pid_t pid) {
  EXPECT_EQ(doc["trigger"], "killed") << doc.dump(2);
  EXPECT_EQ(doc["pid"], pid);
  ASSERT_EQ(doc["connections"].size(), 2u) << doc.dump(2);
  EXPECT_EQ(doc["summary"]["leaked"], 2);
  EXPECT_EQ(doc["summary"]["opened"], 3);
  EXPECT_EQ(doc["summary"]["closed"], 1);
  const std::pair<const char*, const char*> expected[] = {{"open_from_alpha", "JOURNAL_ALPHA"},
                                                          {"open_from_gamma", "JOURNAL_GAMMA"}};
  for (std::size_t i = 0; i < 2; ++i) {
    const json& c = doc["connections"][i];
    EXPECT_EQ(c["status"], "leaked");
    EXPECT_EQ(c["library"], "libpq");
    EXPECT_FALSE(frame_of(c, "open_from_beta")) << c.dump(2);
    const json* f = frame_of(c, expected[i].first);
    ASSERT_TRUE(f) << "no " << expected[i].first << " frame in " << c.dump(2);
    EXPECT_EQ((*f)["line"], marker_line(expected[i].second)) << f->dump();
    EXPECT_TRUE(contains(text_of(*f, "file"), "journal_victim.c")) << f->dump();
  }
  // The target is redacted like every report's: no password ever.
  for (const json& c : doc["connections"]) EXPECT_FALSE(contains(c["target"], "password="));
}

json report_json(const std::string& dir) {
  Result r = connleak({"report", "--format", "json", "--fail-on", "never", dir});
  EXPECT_EQ(r.exit_code, 0) << describe(r);
  return json::parse(r.out);
}

// Runs journal_victim `how` under the shim into `dir`; returns its pid once it died.
pid_t die(const std::string& how, const std::string& dir, int expected_signal) {
  Process p({bin("journal_victim"), how}, under_shim(dir));
  EXPECT_EQ(p.read_line(), "ready");
  pid_t pid = p.pid();
  if (how == "wait") kill(pid, SIGKILL);
  Result r = p.wait();
  EXPECT_EQ(r.signal, expected_signal) << describe(r);
  return pid;
}

}  // namespace

TEST(Journal, SigkillLeavesTheOpenConnectionsAndWhereTheyWereOpened) {
  TempDir dir;
  Process p({bin("journal_victim"), "wait"}, under_shim(dir.path()));
  ASSERT_EQ(p.read_line(), "ready");
  const pid_t pid = p.pid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  // Dead but not reaped yet (a zombie, as under a busy supervisor): already gone.
  siginfo_t info{};
  ASSERT_EQ(waitid(P_PID, static_cast<id_t>(pid), &info, WEXITED | WNOWAIT), 0);
  expect_alpha_and_gamma(report_json(dir.path()), pid);
  EXPECT_EQ(p.wait().signal, SIGKILL);
  ASSERT_EQ(journals_in(dir.path()).size(), 1u);
  expect_alpha_and_gamma(report_json(dir.path()), pid);

  Result text = connleak({"report", dir.path()});
  EXPECT_EQ(text.exit_code, 23) << describe(text);  // leaks fail the report, as exit reports do
  EXPECT_TRUE(contains(text.out, "died without its exit report (killed)")) << text.out;
  EXPECT_TRUE(contains(text.out, "open_from_alpha")) << text.out;
  EXPECT_TRUE(contains(text.out, "SUMMARY: connleak: 2 leaked connection(s)")) << text.out;
}

TEST(Journal, AbortLeavesTheOpenConnections) {
  TempDir dir;
  pid_t pid = die("abort", dir.path(), SIGABRT);
  expect_alpha_and_gamma(report_json(dir.path()), pid);
}

TEST(Journal, SegfaultLeavesTheOpenConnections) {
  TempDir dir;
  pid_t pid = die("segv", dir.path(), SIGSEGV);
  expect_alpha_and_gamma(report_json(dir.path()), pid);
}

// abort() from a second thread while a third opens and closes connections:
// alpha and gamma at their lines, and whatever else the journal kept is the
// storm's own connection (open at the moment of death), never invented.
TEST(Journal, AbortFromASecondThreadWhileAThirdConnects) {
  TempDir dir;
  Process p({bin("journal_victim"), "abort_thread"}, under_shim(dir.path()));
  ASSERT_EQ(p.read_line(), "ready");
  const pid_t pid = p.pid();
  Result r = p.wait();
  ASSERT_EQ(r.signal, SIGABRT) << describe(r);
  json doc = report_json(dir.path());
  EXPECT_EQ(doc["trigger"], "killed") << doc.dump(2);
  EXPECT_EQ(doc["pid"], pid);
  ASSERT_GE(doc["connections"].size(), 2u) << doc.dump(2);
  ASSERT_LE(doc["connections"].size(), 3u) << doc.dump(2);
  int alpha = 0, gamma = 0, storm = 0;
  for (const json& c : doc["connections"]) {
    EXPECT_EQ(c["status"], "leaked");
    EXPECT_FALSE(frame_of(c, "open_from_beta")) << c.dump(2);
    alpha += frame_of(c, "open_from_alpha") != nullptr;
    gamma += frame_of(c, "open_from_gamma") != nullptr;
    storm += frame_of(c, "open_from_storm") != nullptr;
  }
  EXPECT_EQ(alpha, 1) << doc.dump(2);
  EXPECT_EQ(gamma, 1) << doc.dump(2);
  EXPECT_EQ(alpha + gamma + storm, static_cast<int>(doc["connections"].size())) << doc.dump(2);
}

// An OOM kill without a cgroup: the process is resident with 512 MiB it
// touched when SIGKILL (what the OOM killer sends) arrives.
TEST(Journal, AMemoryHogKilledLikeTheOomKillerDoesLeavesItsConnections) {
  TempDir dir;
  Process p({bin("journal_victim"), "hog"}, under_shim(dir.path()));
  ASSERT_EQ(p.read_line(), "ready");
  ASSERT_EQ(p.read_line(), "hogging");
  const pid_t pid = p.pid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(p.wait().signal, SIGKILL);
  expect_alpha_and_gamma(report_json(dir.path()), pid);
}

// 100,000 connections opened and closed through one journal: its size is the
// size of a journal that saw three (fixed slots rewritten in place, the one
// stack and target logged once), and what it says at death is still exact.
TEST(Journal, AHundredThousandConnectionsKeepTheJournalsSize) {
  TempDir small, dir;
  Process few({bin("journal_victim"), "wait"}, under_shim(small.path()));
  ASSERT_EQ(few.read_line(), "ready");
  auto small_files = journals_in(small.path());
  ASSERT_EQ(small_files.size(), 1u);
  const auto small_size = fs::file_size(small_files[0]);
  kill(few.pid(), SIGKILL);
  few.wait();

  Process p({bin("journal_victim"), "churn"}, under_shim(dir.path()));
  ASSERT_EQ(p.read_line(), "ready");
  auto files = journals_in(dir.path());
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(fs::file_size(files[0]), small_size);
  const pid_t pid = p.pid();
  kill(pid, SIGKILL);
  p.wait();
  json doc = report_json(dir.path());
  EXPECT_EQ(doc["trigger"], "killed") << doc.dump(2);
  ASSERT_EQ(doc["connections"].size(), 2u) << doc.dump(2);
  for (const json& c : doc["connections"]) EXPECT_FALSE(frame_of(c, "open_from_churn"));
  for (const json& n : doc["notes"]) EXPECT_FALSE(contains(n, "not journaled")) << n;
  EXPECT_TRUE(frame_of(doc["connections"][0], "open_from_alpha")) << doc.dump(2);
  EXPECT_TRUE(frame_of(doc["connections"][1], "open_from_gamma")) << doc.dump(2);
}

// A full slot table (journal_slots=2: alpha and beta fill it, so gamma finds
// no slot) degrades to a count, never to a failure: alpha, the canary, is
// still there at its line; beta was closed; gamma is counted, not invented.
TEST(Journal, AFullSlotTableCountsTheConnectionsNotJournaled) {
  TempDir dir;
  Process p({bin("journal_victim"), "wait"}, under_shim(dir.path(), ":journal_slots=2"));
  ASSERT_EQ(p.read_line(), "ready");
  const pid_t pid = p.pid();
  ASSERT_EQ(kill(pid, SIGKILL), 0);
  EXPECT_EQ(p.wait().signal, SIGKILL);
  json doc = report_json(dir.path());
  EXPECT_EQ(doc["pid"], pid);
  ASSERT_EQ(doc["connections"].size(), 1u) << doc.dump(2);
  const json* alpha = frame_of(doc["connections"][0], "open_from_alpha");
  ASSERT_TRUE(alpha) << doc.dump(2);
  EXPECT_EQ((*alpha)["line"], marker_line("JOURNAL_ALPHA"));
  bool counted = false;
  for (const json& n : doc["notes"])
    counted = counted || contains(n, "1 connection(s) were not journaled");
  EXPECT_TRUE(counted) << doc["notes"].dump(2);
  Result text = connleak({"report", dir.path()});
  EXPECT_TRUE(contains(text.out + text.err, "1 connection(s) were not journaled"))
      << describe(text);
}

TEST(Journal, NormalExitRemovesTheJournalAndKeepJournalKeepsIt) {
  TempDir dir;
  Result r = run({bin("journal_victim"), "exit"}, under_shim(dir.path()));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_TRUE(journals_in(dir.path()).empty());
  json doc = report_json(dir.path());
  EXPECT_EQ(doc["trigger"], "exit");
  EXPECT_EQ(doc["summary"]["leaked"], 2);

  // Canary: the same run with keep_journal=1 leaves one, and it is not counted
  // a second time next to the exit report.
  TempDir kept;
  r = run({bin("journal_victim"), "exit"}, under_shim(kept.path(), ":keep_journal=1"));
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  EXPECT_EQ(journals_in(kept.path()).size(), 1u);
  doc = report_json(kept.path());
  EXPECT_EQ(doc["trigger"], "exit");
  EXPECT_EQ(doc["summary"]["leaked"], 2);
  EXPECT_EQ(doc["connections"].size(), 2u);
}

TEST(Journal, RunPrintsWhatAKilledProcessHeldAndKeepsItsStatus) {
  Result r = run({cli_path(), "run", "--", bin("journal_victim"), "abort"}, {.pg = true});
  EXPECT_EQ(r.exit_code, 128 + SIGABRT) << describe(r);
  EXPECT_TRUE(contains(r.err, "died without its exit report (killed)")) << r.err;
  EXPECT_TRUE(contains(r.err, "open_from_alpha")) << r.err;
  EXPECT_TRUE(contains(r.err, "open_from_gamma")) << r.err;
  EXPECT_FALSE(contains(r.err, "no leaks")) << r.err;
  EXPECT_TRUE(contains(r.err, "SUMMARY: connleak: 2 leaked connection(s)")) << r.err;
}

TEST(Journal, TornAndTruncatedJournalsGiveOneLineAndNeverInventConnections) {
  TempDir dir;
  die("wait", dir.path(), SIGKILL);
  auto files = journals_in(dir.path());
  ASSERT_EQ(files.size(), 1u);
  const std::string original = read_file(files[0]);
  fs::remove(files[0]);
  // The whole header, and every offset around the slots and log entries in use.
  std::vector<std::size_t> cuts;
  for (std::size_t n = 0; n <= 4200; n += 97) cuts.push_back(n);
  for (std::size_t n = 4096; n < 4096 + 4 * 64; ++n) cuts.push_back(n);
  const std::size_t log_at = 4096 + 16384 * 64;
  for (std::size_t n = log_at; n < log_at + 2048; n += 7) cuts.push_back(n);
  for (std::size_t cut : cuts) {
    SCOPED_TRACE("truncated at " + std::to_string(cut));
    TempDir t;
    write_file(t.file("connleak.1.0-0.journal"), original.substr(0, cut));
    // Keep the file from looking alive: another pid would be looked up.
    Result r =
        connleak({"report", "--format", "json", "--allow-empty", "--fail-on", "never", t.path()});
    ASSERT_TRUE(r.exit_code == 0 || r.exit_code == 2) << describe(r);
    ASSERT_EQ(r.signal, 0);
    EXPECT_LE(lines(r.err).size(), 3u) << r.err;
    if (r.out.empty()) continue;
    json doc = json::parse(r.out);
    EXPECT_LE(doc["connections"].size(), 2u);
    for (const json& c : doc["connections"]) EXPECT_FALSE(frame_of(c, "open_from_beta"));
  }
}

TEST(Journal, ARebuiltBinaryGetsANoteAndRawAddressesNeverWrongNames) {
  TempDir dir, bindir;
  const std::string victim = bindir.file("journal_victim");
  fs::copy_file(bin("journal_victim"), victim);
  Process p({victim, "wait"}, under_shim(dir.path()));
  ASSERT_EQ(p.read_line(), "ready");
  kill(p.pid(), SIGKILL);
  p.wait();
  // Another program (another build id) now stands where the binary was.
  fs::remove(victim);
  fs::copy_file(bin("hold_connection"), victim);

  json doc = report_json(dir.path());
  ASSERT_EQ(doc["connections"].size(), 2u) << doc.dump(2);
  bool noted = false;
  for (const json& n : doc["notes"])
    noted = noted || contains(n, victim + " changed since the process ran");
  EXPECT_TRUE(noted) << doc.dump(2);
  for (const json& c : doc["connections"]) {
    EXPECT_FALSE(frame_of(c, "open_from_alpha"));
    EXPECT_FALSE(frame_of(c, "open_from_gamma"));
    EXPECT_FALSE(frame_of(c, "hold_this_connection"));
    bool raw = false;
    for (const json& f : c["acquired"]["native"])
      if (text_of(f, "module") == victim) {
        EXPECT_EQ(text_of(f, "function"), "") << f.dump();
        raw = raw || !text_of(f, "address").empty();
      }
    EXPECT_TRUE(raw) << c.dump(2);
  }
}

TEST(Journal, DumpJournalReadsAStoppedProcessWithoutItsCooperation) {
  TempDir dir;
  // No control socket and no dump signal: the process could not answer anyway.
  Process p({bin("journal_victim"), "wait"}, under_shim(dir.path(), ":control=0"));
  ASSERT_EQ(p.read_line(), "ready");
  ASSERT_EQ(kill(p.pid(), SIGSTOP), 0);
  Result r = connleak({"dump", "--journal", "--format", "json", std::to_string(p.pid())});
  ASSERT_EQ(r.exit_code, 0) << describe(r);
  json doc = json::parse(r.out);
  EXPECT_EQ(doc["trigger"], "request");
  ASSERT_EQ(doc["connections"].size(), 2u) << doc.dump(2);
  for (const json& c : doc["connections"]) EXPECT_EQ(c["status"], "open");
  EXPECT_TRUE(frame_of(doc["connections"][0], "open_from_alpha")) << doc.dump(2);
  EXPECT_TRUE(frame_of(doc["connections"][1], "open_from_gamma")) << doc.dump(2);
  Result text = connleak({"dump", "--journal", std::to_string(p.pid())});
  EXPECT_TRUE(contains(text.out, "dump (request): 2 open connection(s)")) << describe(text);

  ASSERT_EQ(kill(p.pid(), SIGCONT), 0);
  Result done = p.wait();
  EXPECT_EQ(done.exit_code, 0) << describe(done);
  EXPECT_TRUE(journals_in(dir.path()).empty());  // a normal exit removed it
  // Canary: a process that has no journal is one clear line.
  Result none = connleak({"dump", "--journal", std::to_string(getpid())});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_TRUE(contains(none.err, "has no journal mapped")) << describe(none);
}

TEST(Journal, APythonProgramKilledKeepsItsPythonFrames) {
  TempDir dir;
  const std::string script = dir.file("victim.py");
  write_file(script,
             "import os, sys\n"
             "import psycopg2\n"
             "def open_from_python():\n"
             "    return psycopg2.connect(os.environ['CONNLEAK_TEST_PG_CONNINFO'])  # line 4\n"
             "held = open_from_python()\n"
             "print('ready', flush=True)\n"
             "sys.stdin.read()\n");
  TempDir reports;
  Process p({"/usr/bin/python3", script}, under_shim(reports.path()));
  ASSERT_EQ(p.read_line(), "ready");
  kill(p.pid(), SIGKILL);
  p.wait();
  json doc = report_json(reports.path());
  EXPECT_EQ(doc["trigger"], "killed");
  ASSERT_EQ(doc["connections"].size(), 1u) << doc.dump(2);
  const json& py = doc["connections"][0]["acquired"]["python"];
  ASSERT_TRUE(py.is_array()) << doc.dump(2);
  bool found = false;
  for (const json& f : py)
    if (text_of(f, "function") == "open_from_python") {
      found = true;
      EXPECT_EQ(f["line"], 4);
      EXPECT_EQ(text_of(f, "file"), script);
    }
  EXPECT_TRUE(found) << py.dump(2);
}

TEST(Journal, AForkChildKilledWhileItsParentExitsNormally) {
  TempDir dir;
  Process parent({bin("journal_victim"), "fork"}, under_shim(dir.path()));
  ASSERT_EQ(parent.read_line(), "ready");
  const std::string line = parent.read_line();
  ASSERT_EQ(line.rfind("child ", 0), 0u) << line;
  const pid_t child = std::stoi(line.substr(6));
  kill(child, SIGKILL);
  Result r = parent.wait();
  EXPECT_EQ(r.exit_code, 0) << describe(r);

  json doc = report_json(dir.path());
  // The parent's exit report: alpha and gamma. The child's journal: only what
  // the child opened itself; the two it inherited are the parent's.
  ASSERT_EQ(doc["connections"].size(), 3u) << doc.dump(2);
  int from_child = 0;
  for (const json& c : doc["connections"]) {
    EXPECT_EQ(c["status"], "leaked");
    if (c["pid"] == child) {
      ++from_child;
      EXPECT_TRUE(frame_of(c, "open_from_child")) << c.dump(2);
    } else {
      EXPECT_EQ(c["pid"], parent.pid());
      EXPECT_FALSE(frame_of(c, "open_from_child")) << c.dump(2);
    }
  }
  EXPECT_EQ(from_child, 1);
  bool noted = false;
  for (const json& n : doc["notes"])
    noted = noted || contains(n, "pid " + std::to_string(child) + " ended without");
  EXPECT_TRUE(noted) << doc.dump(2);
  EXPECT_EQ(journals_in(dir.path()).size(), 1u);  // the child's; the parent removed its own
}
