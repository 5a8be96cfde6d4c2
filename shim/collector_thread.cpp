#include "shim/collector_thread.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "collector/logger.h"
#include "collector/report_json.h"
#include "collector/report_writer.h"
#include "collector/watchdog.h"
#include "shim/guard.h"
#include "shim/pool_snapshot.h"
#include "shim/runtime.h"

namespace connleak::shim {

namespace {

std::atomic<bool> g_started{false};
std::mutex g_start_mutex;
// Signal pipe: the handler writes one byte, the thread does the dump.
std::atomic<int> g_pipe_read{-1};
std::atomic<int> g_pipe_write{-1};
std::atomic<bool> g_handler_installed{false};
std::atomic<bool> g_said_signal_taken{false};
int g_listen_fd = -1;

void on_dump_signal(int) {
  int saved = errno;
  int fd = g_pipe_write.load(std::memory_order_relaxed);
  if (fd >= 0) {
    char byte = 1;
    ssize_t ignored = write(fd, &byte, 1);  // full pipe: a dump is already pending
    (void)ignored;
  }
  errno = saved;
}

Thresholds thresholds() {
  return {options().threshold.seconds, options().txn_threshold.seconds};
}

bool needed() {
  const Options& o = options();
  return thresholds().any() || o.checkout_threshold.seconds > 0 || o.dump_signal > 0 || o.control;
}

void say_signal_taken(int sig) {
  if (!g_said_signal_taken.exchange(true))
    log().warn("connleak: the program handles signal {} itself; dumps on that signal are off "
               "(use `connleak dump {}` or connleak_dump())", sig, getpid());
}

// Never take a signal away from the program: install only over the default
// action, and notice when the program later installs its own handler.
void install_dump_handler() {
  int sig = static_cast<int>(options().dump_signal);
  if (sig <= 0 || g_pipe_write.load() < 0) return;
  struct sigaction current{};
  if (sigaction(sig, nullptr, &current) != 0) return;
  if (current.sa_handler == &on_dump_signal) {  // inherited across fork()
    g_handler_installed = true;
    return;
  }
  if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO)) {
    say_signal_taken(sig);
    return;
  }
  struct sigaction ours{};
  ours.sa_handler = &on_dump_signal;
  sigemptyset(&ours.sa_mask);
  ours.sa_flags = SA_RESTART;  // the program's blocking calls must not see EINTR
  if (sigaction(sig, &ours, nullptr) == 0) g_handler_installed = true;
}

void check_dump_handler_still_ours() {
  int sig = static_cast<int>(options().dump_signal);
  if (!g_handler_installed || sig <= 0) return;
  struct sigaction current{};
  if (sigaction(sig, nullptr, &current) == 0 && current.sa_handler != &on_dump_signal) {
    g_handler_installed = false;
    say_signal_taken(sig);
  }
}

bool make_pipe() {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) return false;
  g_pipe_read = fds[0];
  g_pipe_write = fds[1];
  return true;
}

// Abstract socket "\0connleak.<pid>": no file to clean up, gone with the process.
int make_control_socket() {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::string name = "connleak." + std::to_string(getpid());
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  if (bind(fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 || listen(fd, 4) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

void write_all(int fd, const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// One request per connection: "dump\n" -> the JSON report of a dump.
void serve_control_client(int listen_fd) {
  int client = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return;
  ucred peer{};
  socklen_t len = sizeof peer;
  // Same user or root only: a dump names hosts, users and code locations.
  bool allowed = getsockopt(client, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 &&
                 (peer.uid == 0 || peer.uid == getuid());
  if (allowed) {
    timeval tv{2, 0};
    setsockopt(client, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    char buf[64];
    ssize_t n = recv(client, buf, sizeof buf - 1, 0);
    std::string request = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    if (request.rfind("dump", 0) == 0) {
      std::optional<CollectedReport> report = collect_report(options(), "request", &probe_state, false);
      if (report) write_all(client, to_json_text(report->report));
    } else {
      write_all(client, "{\"error\": \"unknown request\"}\n");
    }
  }
  close(client);
}

void watchdog_round() {
  checkout_watchdog_round();
  Thresholds th = thresholds();
  if (!th.any()) return;
  std::int64_t now_mono = mono_now_ns();
  ScanResult scan = watchdog_scan(Registry::instance(), th, now_mono, now_mono + 50'000'000);
  if (scan.alerts.empty()) return;
  Symbolizer symbolizer;
  for (const std::string& block : render_alerts(scan.alerts, th, now_mono, symbolizer, &probe_state, 10,
                                                configured_suppressions(options())))
    log_block(block);
}

int tick_ms() {
  // A fraction of the smallest threshold, so an alert comes at most ~25% late;
  // at least once a second to notice a dump signal handler being replaced.
  Thresholds th = thresholds();
  double smallest = 0;
  for (double t : {th.lifetime_seconds, th.txn_seconds, options().checkout_threshold.seconds})
    if (t > 0 && (smallest == 0 || t < smallest)) smallest = t;
  if (smallest == 0) return 1000;
  return std::clamp(static_cast<int>(smallest * 1000 / 4), 10, 1000);
}

void* thread_main(void*) {
  Reentry guard;  // everything this thread does is the shim's own work
  std::int64_t next_round = mono_now_ns();
  for (;;) {
    pollfd fds[2] = {{g_pipe_read.load(), POLLIN, 0}, {g_listen_fd, POLLIN, 0}};
    int wait = static_cast<int>(std::max<std::int64_t>(0, (next_round - mono_now_ns()) / 1'000'000));
    int ready = poll(fds, 2, wait);
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      char drain[64];
      while (read(fds[0].fd, drain, sizeof drain) > 0) {
      }
      write_dump("signal");
    }
    if (ready > 0 && (fds[1].revents & POLLIN)) serve_control_client(g_listen_fd);
    if (mono_now_ns() >= next_round) {
      watchdog_round();
      check_dump_handler_still_ours();
      next_round = mono_now_ns() + static_cast<std::int64_t>(tick_ms()) * 1'000'000;
    }
  }
  return nullptr;
}

}  // namespace

void ensure_collector_thread() {
  if (g_started.load(std::memory_order_acquire)) return;
  if (!needed() || in_vfork_child()) return;
  std::lock_guard<std::mutex> lock(g_start_mutex);
  if (g_started.load(std::memory_order_relaxed)) return;
  g_started.store(true, std::memory_order_release);  // one attempt: never retried in a loop
  Reentry guard;
  if (options().dump_signal > 0 && make_pipe()) install_dump_handler();
  if (options().control) g_listen_fd = make_control_socket();
  // Block every signal in the thread so none of the program's is delivered to it.
  sigset_t all, old;
  sigfillset(&all);
  pthread_sigmask(SIG_SETMASK, &all, &old);
  pthread_attr_t attr;
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_t thread;
  int rc = pthread_create(&thread, &attr, &thread_main, nullptr);
  pthread_attr_destroy(&attr);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
  if (rc != 0) {
    log().warn("connleak: could not start the collector thread ({}); no alerts or dumps", std::strerror(rc));
    return;
  }
  pthread_setname_np(thread, "connleak");
}

void collector_after_fork_child() {
  // The pipe and the socket are shared with the parent: a signal sent to the
  // child must wake the child's thread, and the socket name carries the pid.
  int r = g_pipe_read.exchange(-1), w = g_pipe_write.exchange(-1);
  if (r >= 0) close(r);
  if (w >= 0) close(w);
  if (g_listen_fd >= 0) close(g_listen_fd);
  g_listen_fd = -1;
  // The inherited handler still points at on_dump_signal; with no pipe it does
  // nothing until the child's thread makes a new one.
  new (&g_start_mutex) std::mutex();
  g_started.store(false, std::memory_order_release);
}

}  // namespace connleak::shim
