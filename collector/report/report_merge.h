#pragma once
// Merges the reports of several processes (a process tree under `connleak run`,
// or files given to `connleak report`) into one Report that every renderer
// takes as is. Connections keep their fields and get `pid` set to the process
// that reported them; render_text then groups the same acquisition site across
// processes into one block with a count, because site_key ignores addresses and
// modules.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

struct MergeOptions {
  // What the merged report says about its process. `connleak run` passes the
  // command's pid and argv (the root of the tree). Unset: a single report keeps
  // its own; several get argv {"N processes (pids a, b, c)"} and the pid of
  // their tree's root (the one reporter whose parent did not report, else the
  // parent they all share, else 0).
  std::optional<std::int64_t> pid;
  std::optional<std::int64_t> ppid;
  std::optional<std::vector<std::string>> argv;
};

// Reports are ordered by pid first (stable), so the output does not depend on
// directory order. Summaries are summed (`complete` is the AND). The trigger is
// "exit" when any input is an exit report, else the common dump trigger
// ("request" when they differ); generated_at is the latest input's.
Report merge_reports(std::vector<Report> reports, const MergeOptions& options = {});

}  // namespace connleak
