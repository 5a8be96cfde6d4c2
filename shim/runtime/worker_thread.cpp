#include "shim/runtime/worker_thread.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <mutex>
#include <string>

#include "collector/core/fork_mutex.h"
#include "collector/policy/watchdog.h"
#include "collector/report/dump_reply.h"
#include "collector/report/format/report_json.h"
#include "collector/report/metrics_file.h"
#include "collector/report/report_writer.h"
#include "collector/util/logger.h"
#include "collector/util/text_util.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/host_safe.h"
#include "shim/runtime/own_fds.h"
#include "shim/runtime/runtime.h"
#include "shim/track/pool_snapshot.h"

namespace connleak::shim {

namespace {

std::atomic<bool> g_started{false};
constinit ForkMutex g_start_mutex;
// Dump signal: the handler raises the flag and writes one byte to the pipe to
// wake the thread; the thread does the dump. The flag carries the request
// while the pipe is being re-created after the host closed it.
std::atomic<bool> g_dump_pending{false};
std::atomic<bool> g_handler_installed{false};
std::atomic<bool> g_said_signal_taken{false};
std::atomic<pid_t> g_said_squatted{0};
bool g_want_pipe = false;  // set before the thread starts, read by it
bool g_want_listen = false;
// Exit report asked for by an _exit hook (maybe in a signal handler): an
// eventfd (slot kExitWake) wakes the thread, a futex word says it is done.
std::atomic<bool> g_running{false};  // the thread exists in this process
std::atomic<bool> g_exit_asked{false};
std::atomic<std::uint32_t> g_exit_done{0};

void on_dump_signal(int) {
  int saved = errno;
  g_dump_pending.store(true, std::memory_order_relaxed);
  own::use<ssize_t>(own::kPipeWrite, 0, [](int fd) {
    char byte = 1;
    return write(fd, &byte, 1);  // full pipe: a dump is already pending
  });
  errno = saved;
}

Thresholds thresholds() {
  return {options().threshold.seconds, options().txn_threshold.seconds,
          options().idle_threshold.seconds};
}

bool needed() {
  const Options& o = options();
  return thresholds().any() || o.checkout_threshold.seconds > 0 || o.dump_signal > 0 || o.control ||
         !o.metrics_file.empty();
}

void say_signal_taken(int sig) {
  if (!g_said_signal_taken.exchange(true))
    log().warn(
        "connleak: the program handles signal {} itself; dumps on that signal are off "
        "(use `connleak dump {}` or connleak_dump())",
        sig, getpid());
}

// Never take a signal away from the program: install only over the default
// action, and notice when the program later installs its own handler.
void install_dump_handler() {
  int sig = static_cast<int>(options().dump_signal);
  if (sig <= 0 || own::peek(own::kPipeWrite) < 0) return;
  struct sigaction current {};
  if (sigaction(sig, nullptr, &current) != 0) return;
  if (current.sa_handler == &on_dump_signal) {  // inherited across fork()
    g_handler_installed = true;
    return;
  }
  if (current.sa_handler != SIG_DFL || (current.sa_flags & SA_SIGINFO)) {
    say_signal_taken(sig);
    return;
  }
  struct sigaction ours {};
  ours.sa_handler = &on_dump_signal;
  sigemptyset(&ours.sa_mask);
  ours.sa_flags = SA_RESTART;  // the program's blocking calls must not see EINTR
  if (sigaction(sig, &ours, nullptr) == 0) g_handler_installed = true;
}

void check_dump_handler_still_ours() {
  int sig = static_cast<int>(options().dump_signal);
  if (!g_handler_installed || sig <= 0) return;
  struct sigaction current {};
  if (sigaction(sig, nullptr, &current) == 0 && current.sa_handler != &on_dump_signal) {
    g_handler_installed = false;
    say_signal_taken(sig);
  }
}

bool make_pipe() {
  return own::create({own::kPipeRead, own::kPipeWrite},
                     [](int* fds) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK); });
}

// Abstract socket "\0connleak.<pid>": no file to clean up, gone with the process.
void make_control_socket() {
  if (!own::create({own::kListen}, [](int* fds) {
        fds[0] = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
        return fds[0] < 0 ? -1 : 0;
      }))
    return;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  pid_t pid = getpid();
  std::string name = control_socket_name(pid);
  std::memcpy(addr.sun_path + 1, name.data(), name.size());
  socklen_t len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + 1 + name.size());
  int err = 0;  // stays 0 when the host closed the socket first: made again later
  const bool listening = own::use<bool>(own::kListen, false, [&](int fd) {
    const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0 && listen(fd, 4) == 0;
    err = ok ? 0 : errno;
    return ok;
  });
  if (!listening && err != 0) {
    own::release(own::kListen);
    // Someone else holds our name: whatever answers there is not us, and
    // `connleak dump` checks who it talks to (SO_PEERCRED) and refuses it.
    if (g_said_squatted.exchange(pid) != pid)
      log().warn(
          "connleak: cannot serve `connleak dump {}`: the control socket @{} is taken by "
          "another process ({}); `connleak dump` will refuse to talk to it",
          pid, name, std::strerror(err));
    return;
  }
}

// The host closed one of our descriptors (own_fds.h): make new ones. The old
// numbers are the host's now and are not touched.
void make_exit_wake() {
  own::create({own::kExitWake}, [](int* fds) {
    fds[0] = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    return fds[0] < 0 ? -1 : 0;
  });
}

void repair_descriptors() {
  if (g_want_pipe && (own::peek(own::kPipeRead) < 0 || own::peek(own::kPipeWrite) < 0)) {
    own::release(own::kPipeRead);
    own::release(own::kPipeWrite);
    make_pipe();
  }
  if (g_want_listen && own::peek(own::kListen) < 0) make_control_socket();
  if (own::peek(own::kExitWake) < 0) make_exit_wake();
}

// Waits up to `ms` for `events` on the client; false when it is gone or late.
bool wait_client(short events, int ms) {
  pollfd p{own::peek(own::kClient), events, 0};
  if (p.fd < 0) return false;
  int n;
  do n = poll(&p, 1, ms);
  while (n < 0 && errno == EINTR);
  return n > 0;
}

// Every call is non-blocking: a use of our descriptor must be short, since a
// host closing it waits for the use to end (own_fds.h).
void write_all(const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = own::use<ssize_t>(own::kClient, -1, [&](int fd) {
      return send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL | MSG_DONTWAIT);
    });
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == EAGAIN && wait_client(POLLOUT, 5000)) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

// One request per connection: "dump\n" -> the JSON report of a dump.
void serve_control_client() {
  if (!own::create({own::kClient}, [](int* fds) {
        fds[0] = own::use<int>(own::kListen, -1, [](int fd) {
          return accept4(fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
        });
        return fds[0] < 0 ? -1 : 0;
      }))
    return;
  ucred peer{};
  // Same user or root only: a dump names hosts, users and code locations.
  bool allowed = own::use<bool>(own::kClient, false, [&](int fd) {
    socklen_t len = sizeof peer;
    return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &peer, &len) == 0 &&
           (peer.uid == 0 || peer.uid == getuid());
  });
  if (allowed && wait_client(POLLIN, 2000)) {
    char buf[64];
    ssize_t n = own::use<ssize_t>(
        own::kClient, -1, [&](int fd) { return recv(fd, buf, sizeof buf - 1, MSG_DONTWAIT); });
    std::string request = n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : "";
    if (request.rfind("dump", 0) == 0) {
      RequestedDump dump = dump_on_request();
      // "dump v2": a client that reads the file line first. A plain "dump"
      // (an older client) gets the report alone, as before.
      if (!dump.json.empty() && request.rfind("dump v2\n", 0) == 0)
        write_all(dump_file_line(dump.file, dump.no_file));
      if (!dump.json.empty()) write_all(dump.json);
    } else {
      write_all("{\"error\": \"unknown request\"}\n");
    }
  }
  own::release(own::kClient);
}

void watchdog_round() {
  host_safe("check checkouts", [] { checkout_watchdog_round(); });
  host_safe("check thresholds", [] {
    Thresholds th = thresholds();
    if (!th.any()) return;
    std::int64_t now_mono = mono_now_ns();
    ScanResult scan = watchdog_scan(Registry::instance(), th, now_mono, now_mono + 50'000'000);
    if (scan.alerts.empty()) return;
    Symbolizer symbolizer;
    for (const std::string& block :
         render_alerts(scan.alerts, th, now_mono, symbolizer, &probe_state, 10,
                       configured_suppressions(options())))
      log_block(block);
  });
}

std::int64_t mono_ms() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<std::int64_t>(ts.tv_sec) * 1000 + ts.tv_nsec / 1'000'000;
}

void exit_report_requested() {
  std::uint64_t drained;
  while (own::use<ssize_t>(own::kExitWake, -1,
                           [&](int fd) { return read(fd, &drained, sizeof drained); }) > 0) {
  }
  if (!g_exit_asked.load(std::memory_order_acquire)) return;
  report_at_exit();  // host_safe inside; a no-op when already written
  g_exit_done.store(1, std::memory_order_release);
  syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&g_exit_done), FUTEX_WAKE_PRIVATE, 1, nullptr,
          nullptr, 0);
}

int tick_ms() {
  // A fraction of the smallest threshold, so an alert comes at most ~25% late;
  // at least once a second to notice a dump signal handler being replaced.
  Thresholds th = thresholds();
  double smallest = 0;
  for (double t :
       {th.lifetime_seconds, th.txn_seconds, th.idle_seconds, options().checkout_threshold.seconds})
    if (t > 0 && (smallest == 0 || t < smallest)) smallest = t;
  if (smallest == 0) return 1000;
  return std::clamp(static_cast<int>(smallest * 1000 / 4), 10, 1000);
}

// metrics_file: the live state (open connections, pools, checkouts) as
// Prometheus text, from a report collected like a dump's but written nowhere else.
void write_live_metrics() {
  host_safe("write metrics_file", [] {
    std::lock_guard<ForkMutex> lock(report_collect_mutex());
    if (exit_reported()) return;
    std::optional<CollectedReport> collected =
        collect_report(options(), "metrics", &probe_state, false);
    if (!collected) return;
    std::string error;
    static bool said = false;
    if (!write_metrics_file(options().metrics_file, collected->report, &error) && !said) {
      said = true;
      log().warn("connleak: could not write metrics_file: {}", error);
    }
  });
}

std::int64_t metrics_interval_ns() {
  return std::max<std::int64_t>(static_cast<std::int64_t>(options().metrics_interval.seconds * 1e9),
                                100'000'000);
}

void* thread_main(void*) {
  Reentry guard;  // everything this thread does is the shim's own work
  std::int64_t next_round = mono_now_ns();
  const bool metrics = !options().metrics_file.empty();
  std::int64_t next_metrics = mono_now_ns();
  for (;;) {
    pollfd fds[3] = {{own::peek(own::kPipeRead), POLLIN, 0},
                     {own::peek(own::kListen), POLLIN, 0},
                     {own::peek(own::kExitWake), POLLIN, 0}};
    std::int64_t wake = metrics ? std::min(next_round, next_metrics) : next_round;
    int wait = static_cast<int>(std::max<std::int64_t>(0, (wake - mono_now_ns()) / 1'000'000));
    int ready = poll(fds, 3, wait);
    if ((ready > 0 && (fds[2].revents & POLLIN)) || (g_exit_asked.load(std::memory_order_acquire) &&
                                                     !g_exit_done.load(std::memory_order_acquire)))
      exit_report_requested();
    if (ready > 0 && (fds[0].revents & POLLIN)) {
      char drain[64];
      while (own::use<ssize_t>(own::kPipeRead, -1,
                               [&](int fd) { return read(fd, drain, sizeof drain); }) > 0) {
      }
    }
    // The request first, then the repair: a host that closed our descriptors
    // before sending the signal finds them re-created once the dump is out.
    bool dump = g_dump_pending.exchange(false);
    if (own::take_host_closed()) repair_descriptors();
    if (dump) write_dump("signal");
    if (ready > 0 && (fds[1].revents & POLLIN)) serve_control_client();
    if (mono_now_ns() >= next_round) {
      watchdog_round();
      check_dump_handler_still_ours();
      next_round = mono_now_ns() + static_cast<std::int64_t>(tick_ms()) * 1'000'000;
    }
    if (metrics && mono_now_ns() >= next_metrics && !exit_reported()) {
      write_live_metrics();
      next_metrics = mono_now_ns() + metrics_interval_ns();
    }
  }
  return nullptr;
}

}  // namespace

ExitReport worker_write_exit_report(int timeout_ms) {
  if (!g_running.load(std::memory_order_acquire)) return ExitReport::kNoThread;
  g_exit_asked.store(true, std::memory_order_release);
  std::uint64_t one = 1;
  // own::use is async-signal-safe; a wake descriptor the host closed is
  // re-created by the thread, which also sees g_exit_asked on its next round.
  if (own::use<ssize_t>(own::kExitWake, -1, [&](int fd) { return write(fd, &one, sizeof one); }) !=
          sizeof one &&
      own::peek(own::kExitWake) >= 0)
    return ExitReport::kNoThread;
  const std::int64_t deadline = mono_ms() + timeout_ms;
  for (;;) {
    if (g_exit_done.load(std::memory_order_acquire) != 0) return ExitReport::kWritten;
    std::int64_t left = deadline - mono_ms();
    if (left <= 0) return ExitReport::kTimedOut;
    timespec ts{static_cast<time_t>(left / 1000), static_cast<long>(left % 1000) * 1'000'000};
    syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(&g_exit_done), FUTEX_WAIT_PRIVATE, 0, &ts,
            nullptr, 0);
  }
}

void ensure_worker_thread() {
  if (g_started.load(std::memory_order_acquire)) return;
  if (!needed() || in_vfork_child()) return;
  std::lock_guard<ForkMutex> lock(g_start_mutex);
  if (g_started.load(std::memory_order_relaxed)) return;
  g_started.store(true, std::memory_order_release);  // one attempt: never retried in a loop
  Reentry guard;
  g_want_pipe = options().dump_signal > 0;
  g_want_listen = options().control;
  if (g_want_pipe && make_pipe()) install_dump_handler();
  if (g_want_listen) make_control_socket();
  make_exit_wake();
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
    log().warn("connleak: could not start the worker thread ({}); no alerts or dumps",
               std::strerror(rc));
    return;
  }
  g_running.store(true, std::memory_order_release);
  pthread_setname_np(thread, "connleak");
}

void worker_after_fork_child() {
  // The pipe and the socket are shared with the parent: a signal sent to the
  // child must wake the child's thread, and the socket name carries the pid.
  own::after_fork_child();
  for (own::Slot slot :
       {own::kPipeRead, own::kPipeWrite, own::kListen, own::kClient, own::kExitWake})
    own::release(slot);
  g_dump_pending.store(false, std::memory_order_relaxed);
  g_running.store(false, std::memory_order_release);
  g_exit_asked.store(false, std::memory_order_relaxed);
  g_exit_done.store(0, std::memory_order_relaxed);
  // The inherited handler still points at on_dump_signal; with no pipe it only
  // raises the flag, which the child's thread (if it starts) serves.
  g_started.store(false, std::memory_order_release);
}

}  // namespace connleak::shim
