#pragma once
// Process-level life of the shim: options, initialisation, fork, exit reports.
#include <string>

#include "collector/core/registry.h"
#include "collector/policy/options.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_writer.h"

namespace connleak::shim {

// Parsed from CONNLEAK_OPTIONS on first use (a hook may run before our
// constructor); warnings are printed once.
const Options& options();

// True when hooks should record: tracking enabled, not re-entered from the
// shim's own work, and not in a vfork()/posix_spawn child that shares the
// parent's memory (touching our state there would corrupt the parent's).
bool should_track();
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
