#pragma once
// The human report, LeakSanitizer style: a banner, one block per acquisition
// site (largest first) with its stack and handles, misuse blocks, and one
// SUMMARY line. Used by the shim at exit/dump time and by the CLI.
#include <string>

#include "collector/report/report_model.h"
#include "collector/report/stack_text.h"  // format_stacks, for the callers of render_alert

namespace connleak {

struct TextOptions {
  bool clean_line = true;       // print a one-line summary when nothing leaked
  std::size_t max_handles = 5;  // handles listed per site before "... and N more"
  std::string
      before_summary;  // printed just before the SUMMARY line (the CLI's suppressions table)
};

// Returns "" when there is nothing to say (clean report with clean_line off).
std::string render_text(const Report& report, const TextOptions& options = {});

// One grouped warning for connections that crossed a threshold in the same
// watchdog round: `kind` is "lifetime" or "idle_in_transaction". `shown` are
// the first connections of a group of `total`; the stacks are the first one's
// (the group shares them).
std::string render_alert(AlertKind kind, double threshold_seconds,
                         const std::vector<Connection>& shown, std::size_t total);

// A stable key for "the same acquisition site": function/file/line of every
// frame (module and address are ignored so sites match across processes and ASLR).
std::string site_key(const Stacks& stacks);

// One connection's line of the text report ("libpq 0x... (id 3, ...)"), escaped.
std::string describe_connection(const Connection& connection);

}  // namespace connleak
