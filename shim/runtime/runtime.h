#pragma once
// Process-level life of the shim: options, initialisation, fork, exit reports.
#include <atomic>
#include <string>

#include "collector/core/registry.h"
#include "collector/policy/options.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_writer.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {

namespace detail {
// Set once, never cleared: the fast paths below are a load and a branch, since
// every hooked call asks both (a function-local static would add its guard
// check and a call per question, ~15 instructions a hook; BENCHMARKS.md).
extern std::atomic<const Options*> g_options;
extern std::atomic<bool> g_tracking_ready;  // initialized, and `enabled`
const Options& parse_options_once();
bool should_track_slow();
}  // namespace detail

// Parsed from CONNLEAK_OPTIONS on first use (a hook may run before our
// constructor); warnings are printed once.
inline const Options& options() {
  if (const Options* o = detail::g_options.load(std::memory_order_acquire)) return *o;
  return detail::parse_options_once();
}

// True when hooks should record: tracking enabled and not re-entered from the
// shim's own work. Not a vfork() check (that is a getpid() system call): the
// hooks a vfork()/posix_spawn child can reach (close, dup2, ...) ask
// in_vfork_child() themselves.
inline bool should_track() {
  if (in_shim()) return false;
  return detail::g_tracking_ready.load(std::memory_order_acquire) || detail::should_track_slow();
}
bool in_vfork_child();

// Writes the exit report once per process (atexit, _exit, _Exit all land here).
void report_at_exit();
// The _exit/_Exit hooks' path: report_at_exit() in a normal context; when the
// caller may be a signal handler, only async-signal-safe work (the collector
// thread writes the report, waited for with a bound).
void report_before_exit();
bool exit_reported();
// A signal blocked now that was not at start-up: most likely a handler is running.
bool maybe_in_signal_handler();
// Writes a dump (trigger "signal" or "request") numbered per process.
bool write_dump(const char* trigger, const ReportExtras* extras = nullptr);

// `connleak dump PID`: the dump (trigger "request") as JSON for the asker,
// also left in report_dir as the next numbered dump, as a signal's is. Empty
// json: nothing could be collected (the reason was said on stderr).
struct RequestedDump {
  std::string json;
  std::string file;     // the path written, or ""
  std::string no_file;  // why no file was written ("report_dir is not set", a write error)
};
RequestedDump dump_on_request();

// State of a live handle, asked from the client library that owns it.
HandleState probe_state(const ConnRecord& record);

}  // namespace connleak::shim
