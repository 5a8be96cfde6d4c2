#include "shim/runtime/runtime.h"

#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <vector>

#include "collector/core/fork_gate.h"
#include "collector/core/fork_mutex.h"
#include "collector/report/format/report_json.h"
#include "collector/report/metrics_file.h"
#include "collector/report/report_writer.h"
#include "collector/util/logger.h"
#include "collector/util/text_util.h"
#include "shim/hooks/libc_real.h"
#include "shim/hooks/libpq_probe.h"
#include "shim/hooks/mysql_probe.h"
#include "shim/journal/journal_writer.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/host_safe.h"
#include "shim/runtime/worker_thread.h"
#include "shim/track/socket_table.h"
#include "shim/track/socket_track.h"

namespace connleak::shim {

namespace {

std::atomic<pid_t> g_pid{0};
std::atomic<bool> g_exit_reported{false};
std::atomic<unsigned> g_dump_count{0};

pid_t cached_pid() {
  pid_t pid = g_pid.load(std::memory_order_relaxed);
  if (pid == 0) {
    pid = static_cast<pid_t>(syscall(SYS_getpid));
    g_pid.store(pid, std::memory_order_relaxed);
  }
  return pid;
}

// --- fork ------------------------------------------------------------------
// Every lock of the shim is a ForkMutex: all are taken before fork so the
// child gets consistent tables, released in the parent and re-initialised in
// the child, where the threads that held them do not exist.
// Then the loader walks (fork_gate.h): after the locks, so no thread waiting
// at the gate holds one of them.
void fork_prepare() {
  ForkMutex::fork_prepare_all();
  fork_gate::prepare();
}

// A lock skipped at prepare (its holder stuck, or the forking thread itself)
// or a loader walk still running means this child may hold a table mid-update
// (or the loader's lock taken by a thread that is gone). Reading those tables
// could loop or crash the child, so the shim goes quiet here: nothing is
// tracked or reported in this process, and one line says why. The host's own
// calls still pass through.
void turn_off_in_child(pid_t parent, std::size_t locks_skipped, bool walks_finished) {
  auto* off = new Options(options());
  off->enabled = false;
  detail::g_options.store(off, std::memory_order_release);
  detail::g_tracking_ready.store(false, std::memory_order_release);
  log().warn(
      "fork() in pid {} found {} of connleak's locks still held{}: connleak is off in child {} "
      "(its connections are not tracked or reported)",
      static_cast<int>(parent), locks_skipped,
      walks_finished ? "" : " and a loader walk in progress",
      static_cast<int>(g_pid.load(std::memory_order_relaxed)));
}

void fork_parent() {
  fork_gate::parent();
  ForkMutex::fork_parent_all();
}

void fork_child() {
  const std::size_t skipped = ForkMutex::skipped_at_last_fork();
  const bool walks_finished = fork_gate::walks_finished_at_last_fork();
  fork_gate::child();
  ForkMutex::fork_child_all();
  reset_tid_cache();
  const pid_t parent = g_pid.load(std::memory_order_relaxed);
  g_pid.store(static_cast<pid_t>(syscall(SYS_getpid)), std::memory_order_relaxed);
  g_exit_reported.store(false, std::memory_order_relaxed);
  g_dump_count.store(0, std::memory_order_relaxed);
  journal::after_fork_child();  // before any hook of the child can store into the parent's file
  worker_after_fork_child();
  sock::after_fork_child();
  if (skipped != 0 || !walks_finished) {
    turn_off_in_child(parent, skipped, walks_finished);
    return;  // the tables below are the ones that may be mid-update
  }
  Registry::instance().after_fork_child();
  CheckoutTable::instance().after_fork_child();
}

void at_exit_handler() {
  report_at_exit();
}

// The signal mask the program started with: a signal blocked now that was not
// blocked then means we are most likely inside a signal handler (the kernel
// blocks the handled signal while its handler runs).
sigset_t g_initial_mask;
std::atomic<bool> g_initial_mask_known{false};

void initialize() {
  static std::once_flag once;
  std::call_once(once, [] {
    Reentry guard;
    cached_pid();
    if (pthread_sigmask(SIG_SETMASK, nullptr, &g_initial_mask) == 0)
      g_initial_mask_known.store(true, std::memory_order_release);
    const Options& opts = options();
    if (opts.help) log_block(options_help(opts));
    // Resolve the exit functions now: they are called in vfork children (the
    // parent's memory, where a first dlsym would allocate) and from signal
    // handlers. The other libc hooks resolve on first use (no start-up cost).
    libc::real<libc::k__exit>();
    libc::real<libc::k__Exit>();
    pthread_atfork(&fork_prepare, &fork_parent, &fork_child);
    journal::install();
    // Registered before the program's own atexit handlers and static
    // destructors, so it runs after them: closes done there are seen.
    std::atexit(&at_exit_handler);
  });
}

__attribute__((constructor)) void connleak_constructor() {
  initialize();
}

}  // namespace

namespace detail {

constinit std::atomic<const Options*> g_options{nullptr};
constinit std::atomic<bool> g_tracking_ready{false};

const Options& parse_options_once() {
  static const Options& parsed = []() -> const Options& {
    std::vector<std::string> warnings;
    const char* env = getenv("CONNLEAK_OPTIONS");
    auto* opts = new Options(parse_options(env ? env : "", &warnings));
    for (const std::string& w : warnings) log().warn("{}", w);
    // Relative to the directory the program started in (options are read
    // before main at the latest): a program that chdir()s later must not
    // scatter its reports.
    if (!opts->report_dir.empty() && opts->report_dir.front() != '/') {
      char cwd[PATH_MAX];
      if (getcwd(cwd, sizeof cwd)) opts->report_dir = std::string(cwd) + "/" + opts->report_dir;
    }
    if (!opts->metrics_file.empty() && opts->metrics_file.front() != '/') {
      char cwd[PATH_MAX];
      if (getcwd(cwd, sizeof cwd)) opts->metrics_file = std::string(cwd) + "/" + opts->metrics_file;
    }
    return *opts;
  }();
  g_options.store(&parsed, std::memory_order_release);
  return parsed;
}

bool should_track_slow() {
  if (!options().enabled) return false;
  initialize();  // covers hooks that run before our constructor
  g_tracking_ready.store(true, std::memory_order_release);
  return true;
}

}  // namespace detail

bool in_vfork_child() {
  return static_cast<pid_t>(syscall(SYS_getpid)) != cached_pid();
}

void report_at_exit() {
  if (in_vfork_child()) return;
  if (g_exit_reported.exchange(true)) return;
  if (!options().enabled) return;
  Reentry guard;
  host_safe("write the exit report", [] {
    // Not while the shim's thread builds the live metrics (metrics_file only).
    std::unique_lock<ForkMutex> lock(report_collect_mutex(), std::defer_lock);
    if (!options().metrics_file.empty()) lock.lock();
    std::string name = report_file_name(cached_pid());
    emit_report(options(), "exit", name, &probe_state);
    // Only now: a process that dies while writing its exit report keeps its journal.
    journal::finish_after_exit_report();
  });
}

bool exit_reported() {
  return g_exit_reported.load(std::memory_order_acquire);
}

bool maybe_in_signal_handler() {
  if (!g_initial_mask_known.load(std::memory_order_acquire))
    return true;  // unknown: assume the worst
  sigset_t now;
  if (pthread_sigmask(SIG_SETMASK, nullptr, &now) != 0) return true;
  for (int sig = 1; sig < NSIG; ++sig)
    if (sigismember(&now, sig) == 1 && sigismember(&g_initial_mask, sig) != 1) return true;
  return false;
}

bool write_dump(const char* trigger, const ReportExtras* extras) {
  if (in_vfork_child() || !options().enabled) return false;
  Reentry guard;
  return host_safe("write a dump", [trigger, extras] {
    unsigned n = g_dump_count.fetch_add(1) + 1;
    std::string name = report_file_name(cached_pid(), n);
    return emit_report(options(), trigger, name, &probe_state, extras);
  });
}

RequestedDump dump_on_request() {
  RequestedDump out;
  if (in_vfork_child() || !options().enabled) return out;
  Reentry guard;
  host_safe("answer `connleak dump`", [&out] {
    std::optional<CollectedReport> report =
        collect_report(options(), "request", &probe_state, false);
    if (!report) return;
    out.json = to_json_text(report->report);
    if (options().report_dir.empty()) {
      out.no_file = "report_dir is not set";
      return;
    }
    // Numbered with the signal's dumps: one sequence of files per process.
    unsigned n = g_dump_count.fetch_add(1) + 1;
    std::string error;
    if (!write_report_file(options(), report->report, report_file_name(cached_pid(), n), &out.file,
                           &error))
      out.no_file = error;
  });
  return out;
}

namespace {

// How long an _exit from a signal handler waits for the worker thread to
// write the exit report before leaving without it.
constexpr int kExitReportWaitMs = 5000;

void say(const char* line) {
  write_all_no_sigpipe(2, line, std::strlen(line));
}

}  // namespace

// _exit is async-signal-safe and programs call it from signal handlers, where
// the interrupted code may hold malloc's or stdio's lock: writing the report
// right here (malloc, /proc reads, symbolization) would deadlock the host. So
// only async-signal-safe work happens when that may be the case: the report is
// handed to the worker thread and waited for, with a bound.
void report_before_exit() {
  if (in_vfork_child() || exit_reported()) return;
  if (!maybe_in_signal_handler()) {
    report_at_exit();
    return;
  }
  switch (worker_write_exit_report(kExitReportWaitMs)) {
    case ExitReport::kWritten:
      return;
    case ExitReport::kTimedOut:
      say("connleak: _exit() in a signal handler: the exit report was not written within 5 s; "
          "exiting without it\n");
      return;
    case ExitReport::kNoThread:
      say("connleak: _exit() in a signal handler and no worker thread to write the exit report; "
          "exiting without it (writing it here could deadlock)\n");
      return;
  }
}

HandleState probe_state(const ConnRecord& record) {
  switch (record.library()) {
    case Library::kLibpq:
      return libpq_state(record);
    case Library::kMysql:
      return mysql_state(record);
    case Library::kSocket:
      return sock::socket_state(record);
    default:
      return {};
  }
}

}  // namespace connleak::shim

// _exit and _Exit skip atexit: a program that leaves through them (os._exit in
// Python, fork children) would otherwise lose its report.
CONNLEAK_EXPORT void _exit(int status) {
  connleak::shim::report_before_exit();
  if (auto fn = CONNLEAK_LIBC_REAL(_exit)) fn(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

CONNLEAK_EXPORT void _Exit(int status) {
  connleak::shim::report_before_exit();
  if (auto fn = CONNLEAK_LIBC_REAL(_Exit)) fn(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}
