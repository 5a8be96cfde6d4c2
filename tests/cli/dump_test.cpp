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
#include <thread>

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

// Binds "\0connleak.<pid>" the way the shim does. -1 when the name is taken
// (the shim itself serves it: the live test covers that case).
int bind_control_socket(pid_t pid) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "connleak." + std::to_string(pid);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// accept() that gives up after 30 s, so a client that never connects fails
// the test instead of hanging it.
int accept_client(int listener) {
  pollfd p{listener, POLLIN, 0};
  if (poll(&p, 1, 30'000) != 1) return -1;
  return accept(listener, nullptr, nullptr);
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

TEST(DumpProtocol, RequestAndReplyAgainstAStandInServer) {
  auto p = idle_process(true);
  int listener = bind_control_socket(p->pid());
  if (listener < 0) GTEST_SKIP() << "the shim serves this socket itself";
  std::string request;
  const std::string reply = canned_dump(p->pid());
  std::thread server([&] {
    for (int round = 0; round < 2; ++round) {  // text, then json
      int c = accept_client(listener);
      if (c < 0) return;
      char buf[64];
      ssize_t n = recv(c, buf, sizeof buf, 0);
      if (round == 0 && n > 0) request.assign(buf, static_cast<std::size_t>(n));
      send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
      close(c);  // EOF ends the reply
    }
  });
  Result text = connleak({"dump", std::to_string(p->pid())});
  Result as_json = connleak({"dump", "--format", "json", std::to_string(p->pid())});
  server.join();
  close(listener);
  EXPECT_EQ(request, "dump\n");
  EXPECT_EQ(text.exit_code, 0) << describe(text);
  EXPECT_TRUE(contains(text.out, "==" + std::to_string(p->pid()) +
                                     "==connleak: dump (request): 2 open connection(s)"))
      << text.out;
  EXPECT_TRUE(contains(text.out, "open_report_conn /src/app.c:42")) << text.out;
  EXPECT_EQ(as_json.exit_code, 0) << describe(as_json);
  EXPECT_EQ(as_json.out, reply);
}

TEST(DumpProtocol, GarbageReplyIsOneLine) {
  auto p = idle_process(true);
  int listener = bind_control_socket(p->pid());
  if (listener < 0) GTEST_SKIP() << "the shim serves this socket itself";
  std::thread server([&] {
    int c = accept_client(listener);
    if (c < 0) return;
    char buf[64];
    recv(c, buf, sizeof buf, 0);
    send(c, "{\"error\": \"unknown request\"}\n", 29, MSG_NOSIGNAL);
    close(c);
  });
  Result r = connleak({"dump", std::to_string(p->pid())});
  server.join();
  close(listener);
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_TRUE(contains(r.err, "answered with something that is not a report")) << r.err;
  EXPECT_EQ(lines(r.err).size(), 1u);
}

TEST(DumpProtocol, TimeoutWhenTheProcessNeverAnswers) {
  auto p = idle_process(true);
  int listener = bind_control_socket(p->pid());
  if (listener < 0) GTEST_SKIP() << "the shim serves this socket itself";
  // Never accepted: the connection sits in the backlog, like a stuck process.
  Result r = connleak({"dump", "--timeout", "300ms", std::to_string(p->pid())});
  close(listener);
  EXPECT_EQ(r.exit_code, 2) << describe(r);
  EXPECT_EQ(r.err,
            "connleak: process " + std::to_string(p->pid()) + " did not answer within 300ms\n");
}
