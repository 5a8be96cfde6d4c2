#include "shim/runtime.h"

#include <dlfcn.h>
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <mutex>
#include <new>
#include <vector>

#include "collector/logger.h"
#include "collector/report_writer.h"
#include "collector/string_table.h"
#include "shim/collector_thread.h"
#include "shim/export.h"
#include "shim/guard.h"
#include "shim/libpq_probe.h"
#include "shim/mysql_probe.h"
#include "shim/socket_table.h"
#include "shim/socket_track.h"

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
// Every lock of ours is taken before fork (bounded: a lock held by a thread
// stuck elsewhere is skipped, not waited on) so the child gets consistent
// tables; the child then re-creates the locks, since the threads that held
// them do not exist there.
std::vector<std::mutex*>& fork_mutexes() {
  static std::vector<std::mutex*>& list = *new std::vector<std::mutex*>;
  return list;
}
std::vector<bool>& fork_taken() {
  static std::vector<bool>& taken = *new std::vector<bool>;
  return taken;
}

void fork_prepare() {
  auto& list = fork_mutexes();
  list.clear();
  Registry::instance().collect_mutexes(list);
  CheckoutTable::instance().collect_mutexes(list);
  StackDepot::instance().collect_mutexes(list);
  string_table_collect_mutexes(list);
  sock::collect_mutexes(list);
  auto& taken = fork_taken();
  taken.assign(list.size(), false);
  std::int64_t deadline = mono_now_ns() + 100'000'000;
  for (std::size_t i = 0; i < list.size(); ++i) {
    while (!(taken[i] = list[i]->try_lock()) && mono_now_ns() < deadline) sched_yield();
  }
}

void fork_parent() {
  auto& list = fork_mutexes();
  auto& taken = fork_taken();
  for (std::size_t i = 0; i < list.size(); ++i)
    if (taken[i]) list[i]->unlock();
}

void fork_child() {
  for (std::mutex* m : fork_mutexes()) new (m) std::mutex();
  reset_tid_cache();
  g_pid.store(static_cast<pid_t>(syscall(SYS_getpid)), std::memory_order_relaxed);
  g_exit_reported.store(false, std::memory_order_relaxed);
  g_dump_count.store(0, std::memory_order_relaxed);
  Registry::instance().after_fork_child();
  CheckoutTable::instance().after_fork_child();
  collector_after_fork_child();
  sock::after_fork_child();
}

void at_exit_handler() { report_at_exit(); }

using ExitFn = void (*)(int);
std::atomic<ExitFn> g_real_exit{nullptr};
std::atomic<ExitFn> g_real_Exit{nullptr};

ExitFn real_exit_fn(std::atomic<ExitFn>& slot, const char* name) {
  ExitFn fn = slot.load(std::memory_order_relaxed);
  if (!fn) {
    fn = reinterpret_cast<ExitFn>(dlsym(RTLD_NEXT, name));
    slot.store(fn, std::memory_order_relaxed);
  }
  return fn;
}

void initialize() {
  static std::once_flag once;
  std::call_once(once, [] {
    Reentry guard;
    cached_pid();
    const Options& opts = options();
    if (opts.help) log_block(options_help(opts));
    // Resolve the exit functions now: in a vfork child they are called with the
    // parent's memory, where a first dlsym would allocate.
    real_exit_fn(g_real_exit, "_exit");
    real_exit_fn(g_real_Exit, "_Exit");
    pthread_atfork(&fork_prepare, &fork_parent, &fork_child);
    // Registered before the program's own atexit handlers and static
    // destructors, so it runs after them: closes done there are seen.
    std::atexit(&at_exit_handler);
  });
}

__attribute__((constructor)) void connleak_constructor() { initialize(); }

}  // namespace

const Options& options() {
  static const Options& parsed = [] () -> const Options& {
    std::vector<std::string> warnings;
    const char* env = getenv("CONNLEAK_OPTIONS");
    auto* opts = new Options(parse_options(env ? env : "", &warnings));
    for (const std::string& w : warnings) log().warn("{}", w);
    return *opts;
  }();
  return parsed;
}

bool in_vfork_child() {
  return static_cast<pid_t>(syscall(SYS_getpid)) != cached_pid();
}

bool should_track() {
  if (in_shim()) return false;
  if (!options().enabled) return false;
  // Every hooked call comes here: std::call_once alone costs two TLS updates
  // through __tls_get_addr, so a plain flag answers once initialized.
  static std::atomic<bool> initialized{false};
  if (!initialized.load(std::memory_order_acquire)) {
    initialize();  // covers hooks that run before our constructor
    initialized.store(true, std::memory_order_release);
  }
  return true;
}

void report_at_exit() {
  if (in_vfork_child()) return;
  if (g_exit_reported.exchange(true)) return;
  if (!options().enabled) return;
  Reentry guard;
  std::string name = "connleak." + std::to_string(cached_pid()) + ".json";
  emit_report(options(), "exit", name, &probe_state);
}

bool write_dump(const char* trigger, const ReportExtras* extras) {
  if (in_vfork_child() || !options().enabled) return false;
  Reentry guard;
  unsigned n = g_dump_count.fetch_add(1) + 1;
  std::string name = "connleak." + std::to_string(cached_pid()) + "." + std::to_string(n) + ".json";
  return emit_report(options(), trigger, name, &probe_state, extras);
}

HandleState probe_state(const ConnRecord& record) {
  switch (record.library) {
    case Library::kLibpq: return libpq_state(record);
    case Library::kMysql: return mysql_state(record);
    case Library::kSocket: return sock::socket_state(record);
    default: return {};
  }
}

}  // namespace connleak::shim

using connleak::shim::g_real_exit;
using connleak::shim::g_real_Exit;

// _exit and _Exit skip atexit: a program that leaves through them (os._exit in
// Python, fork children) would otherwise lose its report.
CONNLEAK_EXPORT void _exit(int status) {
  connleak::shim::report_at_exit();
  if (auto fn = connleak::shim::real_exit_fn(g_real_exit, "_exit")) fn(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}

CONNLEAK_EXPORT void _Exit(int status) {
  connleak::shim::report_at_exit();
  if (auto fn = connleak::shim::real_exit_fn(g_real_Exit, "_Exit")) fn(status);
  syscall(SYS_exit_group, status);
  __builtin_unreachable();
}
