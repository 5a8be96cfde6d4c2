#pragma once
// Writes reports: the human text through the logger and the JSON file into
// report_dir, atomically (temp name + rename) so a reader never sees half a file.
#include <string>
#include <string_view>

#include "collector/options.h"
#include "collector/report_builder.h"

namespace connleak {

// Creates `dir` (and parents) with mode 0700 when missing.
bool ensure_directory(const std::string& dir, std::string* error);
// dir/name written via a 0600 temp file opened O_EXCL|O_NOFOLLOW, then renamed.
bool write_file_atomically(const std::string& dir, const std::string& name, std::string_view content,
                           std::string* error);

// Snapshot -> report -> stderr text + JSON file. `file_name` is e.g.
// "connleak.<pid>.json". Returns false when there was nothing to report (the
// process never saw a connection), in which case nothing is printed or written.
bool emit_report(const Options& options, const std::string& trigger, const std::string& file_name,
                 const StateProbe& probe);

}  // namespace connleak
