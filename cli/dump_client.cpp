#include "cli/dump_client.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <fstream>

#include "cli/common.h"
#include "collector/policy/options.h"
#include "collector/util/text_util.h"

namespace connleak::cli {

namespace {

using Clock = std::chrono::steady_clock;

// A broken or hostile peer must not make us buffer without bound.
constexpr std::size_t kMaxReply = 256u << 20;

std::string who(pid_t pid) {
  return "process " + std::to_string(pid);
}

void check_process(pid_t pid) {
  if (kill(pid, 0) != 0 && errno == ESRCH)
    throw Failure("no process with pid " + std::to_string(pid));
  // EPERM from kill means it exists but belongs to someone else; /proc tells us
  // more (and may still be readable), so carry on to the maps check.
  std::string maps_path = "/proc/" + std::to_string(pid) + "/maps";
  std::ifstream maps(maps_path);
  if (!maps) {
    if (errno == ENOENT) throw Failure("no process with pid " + std::to_string(pid));
    throw Failure(who(pid) + " is not ours to ask (cannot read " + maps_path + ": " +
                  std::strerror(errno) + ")");
  }
  std::string line;
  bool any = false;
  while (std::getline(maps, line)) {
    any = true;
    if (line.find("/libconnleak.so") != std::string::npos) return;
  }
  // A process of another user shows an empty maps file rather than an error.
  if (!any) throw Failure(who(pid) + " is not ours to ask (its memory map is not readable)");
  throw Failure(who(pid) + " is not running under connleak (no libconnleak.so in " + maps_path +
                ")");
}

int remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

std::string timed_out(pid_t pid, std::chrono::milliseconds timeout) {
  return who(pid) + " did not answer within " + format_duration(Duration{timeout.count() / 1000.0});
}

// Waits for `events` on fd; throws the timeout failure when the deadline passes.
void wait_for(int fd, short events, Clock::time_point deadline, pid_t pid,
              std::chrono::milliseconds timeout) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = poll(&p, 1, remaining_ms(deadline));
    if (n > 0) return;
    if (n < 0 && errno == EINTR) continue;
    if (n == 0) throw Failure(timed_out(pid, timeout));
    throw Failure(std::string("poll: ") + std::strerror(errno));
  }
}

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

// Anyone can bind an abstract name first (another user, or the same pid in
// another pid namespace sharing this network namespace): talk only to the
// process we were asked about, run by us or by root. The kernel reports the
// listener's pid in our own pid namespace (0 when it is not visible there).
void check_peer(int fd, pid_t pid, const std::string& name) {
  ucred peer{};
  socklen_t len = sizeof peer;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) != 0)
    throw Failure(who(pid) + ": cannot tell who holds @" + name + " (" + std::strerror(errno) +
                  "); refusing to talk to it");
  std::string holder =
      peer.pid > 0 ? "process " + std::to_string(peer.pid) : "a process outside this pid namespace";
  if (peer.pid != pid)
    throw Failure(who(pid) + "'s control socket @" + name + " is held by " + holder + " (uid " +
                  std::to_string(peer.uid) + "), not by " + who(pid) + "; refusing to talk to it");
  if (peer.uid != 0 && peer.uid != getuid())
    throw Failure(who(pid) + "'s control socket @" + name + " is held by uid " +
                  std::to_string(peer.uid) + ", neither you nor root; refusing to talk to it");
}

}  // namespace

std::string request_dump(pid_t pid, std::chrono::milliseconds timeout) {
  if (pid <= 0) throw Failure("invalid pid " + std::to_string(pid));
  check_process(pid);
  const auto deadline = Clock::now() + timeout;

  Fd sock(socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (sock.get() < 0) throw Failure(std::string("socket: ") + std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  const std::string name = control_socket_name(pid);
  // Abstract namespace: sun_path[0] stays NUL and the length counts exactly
  // the name, with no terminating NUL (it would become part of the name).
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  const auto len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());

  for (;;) {
    if (connect(sock.get(), reinterpret_cast<const sockaddr*>(&addr), len) == 0) break;
    int err = errno;
    if (err == EINTR) continue;
    if (err == EAGAIN) {  // backlog full: the shim is busy with other clients
      if (remaining_ms(deadline) == 0) throw Failure(timed_out(pid, timeout));
      usleep(10'000);
      continue;
    }
    if (err == EACCES || err == EPERM)
      throw Failure(who(pid) + " is not ours to ask (" + std::strerror(err) + ")");
    if (err == ECONNREFUSED || err == ENOENT)
      throw Failure(who(pid) +
                    " did not answer: it has no control socket (it opened no connection yet, or "
                    "runs without control=1: start it under `connleak run`, or set "
                    "CONNLEAK_OPTIONS=control=1)");
    throw Failure(who(pid) + " did not answer: " + std::strerror(err));
  }

  check_peer(sock.get(), pid, name);

  const std::string request = "dump v2\n";  // v2: the file line first (dump_reply.h)
  std::size_t sent = 0;
  while (sent < request.size()) {
    wait_for(sock.get(), POLLOUT, deadline, pid, timeout);
    ssize_t n = send(sock.get(), request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw Failure(who(pid) + " did not answer: " + std::strerror(errno));
    sent += static_cast<std::size_t>(n);
  }

  std::string reply;
  char buf[65536];
  for (;;) {
    wait_for(sock.get(), POLLIN, deadline, pid, timeout);
    ssize_t n = recv(sock.get(), buf, sizeof buf, 0);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n < 0) throw Failure(who(pid) + " did not answer: " + std::strerror(errno));
    if (n == 0) break;
    reply.append(buf, static_cast<std::size_t>(n));
    if (reply.size() > kMaxReply) throw Failure(who(pid) + " sent more than 256 MiB; giving up");
  }
  if (reply.empty())
    throw Failure(who(pid) + " did not answer: it closed the connection without a report");
  return reply;
}

}  // namespace connleak::cli
