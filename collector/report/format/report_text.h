#pragma once
// The human report, LeakSanitizer style: a banner, one block per acquisition
// site (largest first) with its stack and handles, misuse blocks, and one
// SUMMARY line. Used by the shim at exit/dump time and by the CLI.
#include <string>

#include "collector/report/report_model.h"

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
std::string render_alert(const std::string& kind, double threshold_seconds,
                         const std::vector<Connection>& shown, std::size_t total);

// A stable key for "the same acquisition site": function/file/line of every
// frame (module and address are ignored so sites match across processes and ASLR).
std::string site_key(const Stacks& stacks);

// Python frames as text and SARIF show them: the program's innermost frame
// first, standard-library and installed-package runs folded with a count
// ("… 7 frames in asyncio, pymysql").
std::string format_python_frames(const std::vector<Frame>& frames, const char* indent);

// One connection's line of the text report ("libpq 0x... (id 3, ...)"), escaped.
std::string describe_connection(const Connection& connection);

// A block's stacks as the text report prints them (Python first when present).
std::string format_stacks(const Stacks& stacks, const char* indent);

}  // namespace connleak
