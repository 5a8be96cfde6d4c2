#pragma once
// Journals (<report_dir>/connleak.<pid>.<tag>.journal, written by the shim as
// connections open and close) of processes that died without their exit
// report: SIGKILL, the OOM killer, abort(), a fatal signal. Each becomes a
// report with trigger "killed", its stacks symbolized here, offline, from the
// module map the process recorded.
#include <cstdint>
#include <string>
#include <vector>

#include "collector/journal/journal_reader.h"
#include "collector/report/report_model.h"

namespace connleak::cli {

// Journal files of `dir`, sorted by name.
std::vector<std::string> journal_files_in(const std::string& dir);

enum class Liveness { kAlive, kGone, kUnknown };
// Gone: no such pid, or a pid with another start time (reused). Unknown: the
// journal comes from another pid namespace, where our pid numbers mean nothing.
Liveness process_liveness(const journal::JournalContents& journal);

// The report a dead process would have written, as far as its journal tells.
// With `alive` (connleak dump --journal), a dump instead: trigger "request",
// connections "open".
Report killed_report(const journal::JournalContents& journal, const std::string& path,
                     bool alive = false);

// The journal a running process has mapped (from /proc/PID/maps: no
// cooperation needed, works while it is stopped); "" with *error when none.
std::string journal_of_process(long pid, std::string* error);

// Every journal of `dir` whose process is gone and never wrote its exit
// report, as reports; a journal that cannot be read is one warning line.
// `started_after_ns` (wall clock) leaves out processes started earlier (a
// reused report dir's older journals, for `connleak run`).
std::vector<Report> killed_reports_in(const std::string& dir, std::int64_t started_after_ns = 0);

}  // namespace connleak::cli
