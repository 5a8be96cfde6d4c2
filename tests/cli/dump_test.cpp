// `connleak dump` error paths and the client side of the protocol, without a
// database: a process that is not there, one without the shim, one with the
// shim but no control socket, and a stand-in server on the abstract socket
// that checks the request and answers with a canned report (or never).
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstddef>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/cli/harness.h"

using namespace cli_test;
using nlohmann::json;

namespace {

// A process that stays alive until its stdin is closed; it never connects
// anywhere, so the shim in it never opens a control socket of its own. Not
// `exec cat`: between that exec and ld.so mapping the shim again, /proc/PID/maps
// has no libconnleak.so, and a dump asked in that window is rightly refused.
std::unique_ptr<Process> idle_process(bool with_shim) {
  Options o;
  if (with_shim) o.env = {{"LD_PRELOAD", shim_path()}};
  auto p =
      std::make_unique<Process>(std::vector<std::string>{"/bin/sh", "-c", "echo ready; cat"}, o);
  EXPECT_EQ(p->read_line(), "ready");
  return p;
}

std::string canned_dump(pid_t pid) {
  json doc = json::parse(read_file(golden("inputs/connleak.101.json")));
  doc["pid"] = pid;
  doc["trigger"] = "request";
  for (json& c : doc["connections"])
    if (c["status"] == "leaked") c["status"] = "open";
  return doc.dump(2) + "\n";
}

long pid_max() {
  std::ifstream in("/proc/sys/kernel/pid_max");
  long v = 4194304;
  in >> v;
  return v;
}

}  // namespace

TEST(DumpErrors, NoSuchProcess) {
  std::string pid = std::to_string(pid_max() + 1);  // can never exist
  Result r = connleak({"dump", pid});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err, "connleak: no process with pid " + pid + "\n");
  EXPECT_EQ(r.out, "");
}

TEST(DumpErrors, ProcessWithoutTheShim) {
  auto p = idle_process(false);
  Result r = connleak({"dump", std::to_string(p->pid())});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err, "connleak: process " + std::to_string(p->pid()) +
                       " is not running under connleak (no libconnleak.so in /proc/" +
                       std::to_string(p->pid()) + "/maps)\n");
}

TEST(DumpErrors, ShimWithoutControlSocketDidNotAnswer) {
  auto p = idle_process(true);
  Result r = connleak({"dump", std::to_string(p->pid())});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "process " + std::to_string(p->pid()) + " did not answer")) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u);
}

TEST(DumpErrors, NotOursToAsk) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to run the client as another user";
  if (access("/usr/bin/setpriv", X_OK) != 0) GTEST_SKIP() << "no setpriv";
  // nobody must be able to reach the binary; a checkout under /root is not.
  Result probe = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                      cli_path(), "--version"});
  if (probe.exit_code != 0) GTEST_SKIP() << "the build tree is not readable by nobody";
  auto p = idle_process(true);  // root's process
  Result r = run({"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                  cli_path(), "dump", std::to_string(p->pid())});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "is not ours to ask")) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u);
}

// The stand-in (programs/standin_control.py) runs under the shim and binds its
// own pid's name, as the shim does: `connleak dump` talks only to the process
// it was asked about.
std::unique_ptr<Process> standin(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {"/usr/bin/python3",
                                   source_dir() + "/tests/cli/programs/standin_control.py"};
  argv.insert(argv.end(), args.begin(), args.end());
  Options o;
  o.env = {{"LD_PRELOAD", shim_path()}};
  auto p = std::make_unique<Process>(argv, o);
  EXPECT_EQ(p->read_line(), "ready");
  return p;
}

TEST(DumpProtocol, RequestAndReplyAgainstAStandInServer) {
  TempDir dir;
  std::unique_ptr<Process> p;
  {
    // The canned report names the stand-in's pid, which is only known once it
    // runs: write the file after start, before the first request.
    write_file(dir.file("reply.json"), "");
    p = standin({"reply", dir.file("reply.json")});
  }
  const std::string reply = canned_dump(p->pid());
  write_file(dir.file("reply.json"), reply);
  Result text = connleak({"dump", std::to_string(p->pid())});
  Result as_json = connleak({"dump", "--format", "json", std::to_string(p->pid())});
  EXPECT_EQ(p->read_line(), "request b'dump v2\\n'");
  EXPECT_EQ(text.exit_code, 0) << describe(text);
  EXPECT_TRUE(contains(text.out, "==" + std::to_string(p->pid()) +
                                     "==connleak: dump (request): 2 open connection(s)"))
      << text.out;
  EXPECT_TRUE(contains(text.out, "open_report_conn /src/app.c:42")) << text.out;
  // A reply without the file line is an older shim's (it answers "dump v2" as "dump").
  EXPECT_EQ(text.err, "connleak: no file written: process " + std::to_string(p->pid()) +
                          " runs an older libconnleak.so, which does not write `connleak dump` "
                          "files\n");
  EXPECT_EQ(as_json.exit_code, 0) << describe(as_json);
  EXPECT_EQ(as_json.out, reply);
}

TEST(DumpProtocol, GarbageReplyIsOneLine) {
  auto p = standin({"garbage"});
  Result r = connleak({"dump", std::to_string(p->pid())});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "answered with something that is not a report")) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u);
}

TEST(DumpProtocol, TimeoutWhenTheProcessNeverAnswers) {
  // Never accepted: the connection sits in the backlog, like a stuck process.
  auto p = standin({"silent"});
  Result r = connleak({"dump", "--timeout", "300ms", std::to_string(p->pid())});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err,
            "connleak: process " + std::to_string(p->pid()) + " did not answer within 300ms\n");
}

TEST(DumpProtocol, SquatterOfAnotherProcessesNameIsRefused) {
  // Another process took @connleak.<pid> of a process under the shim (which
  // has no control socket of its own: it never connected).
  auto victim = idle_process(true);
  TempDir dir;
  write_file(dir.file("forged.json"), canned_dump(victim->pid()));
  auto squatter = standin({"squat", dir.file("forged.json"), std::to_string(victim->pid())});
  Result r = connleak({"dump", std::to_string(victim->pid())});
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.out, "");
  EXPECT_EQ(r.err, "connleak: process " + std::to_string(victim->pid()) +
                       "'s control socket @connleak." + std::to_string(victim->pid()) +
                       " is held by process " + std::to_string(squatter->pid()) + " (uid " +
                       std::to_string(getuid()) + "), not by process " +
                       std::to_string(victim->pid()) + "; refusing to talk to it\n");
}
