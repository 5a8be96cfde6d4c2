#pragma once
// Writes reports: the human text through the logger and the JSON file into
// report_dir, atomically (temp name + rename) so a reader never sees half a file.
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "collector/policy/options.h"
#include "collector/policy/suppressions.h"
#include "collector/report/report_builder.h"

namespace connleak {

// Creates `dir` (and parents) with mode 0700 when missing.
bool ensure_directory(const std::string& dir, std::string* error);
// False (with the reason) for a directory another user could tamper with:
// owned by someone other than us or root, or group/world-writable without the
// sticky bit (ssh's rule for its own files).
bool trusted_directory(const std::string& dir, std::string* error);
// "<pid namespace inode>-<start time in clock ticks>": tells apart processes
// with the same pid in different pid namespaces (containers sharing a volume).
std::string process_tag();
// connleak.<pid>.json -> connleak.<pid>.<tag>.json (and .<n>.json likewise).
std::string tagged_name(const std::string& name, const std::string& tag);
// dir/name written via a 0600 temp file opened O_EXCL|O_NOFOLLOW (its name
// carries process_tag()), then renamed without replacing: when dir/name
// already exists (another process's report), the file is named
// tagged_name(name, process_tag()) instead. *written gets the path used.
bool write_file_atomically(const std::string& dir, const std::string& name,
                           std::string_view content, std::string* error,
                           std::string* written = nullptr);

// The suppressions named by the `suppressions` option, read once (a bad file
// is one warning, then no suppressions); null when none are configured.
const Suppressions* configured_suppressions(const Options& options);

// What a snapshot adds to a dump (extension: pool checkouts).
struct ReportExtras {
  std::optional<std::uint64_t> pool;     // pool_exhausted: only this pool's open checkouts
  std::optional<double> waited_seconds;  // how long the pool's caller waited
  std::optional<std::string> refusal;    // server_refused: what the server said
  // The current Python stack of a checkout's holder (the shim reads it); null: none.
  std::function<StackId(const CheckoutRecord&)> holder_stack;
};

struct CollectedReport {
  Report report;
  std::string suppressions_table;  // LSan's "Suppressions used:" table, or ""
};

// Snapshot -> report, with the configured suppressions applied. With
// `skip_untouched`, returns nothing for a process that never saw a connection
// (nothing to say at exit).
std::optional<CollectedReport> collect_report(const Options& options, const std::string& trigger,
                                              const StateProbe& probe, bool skip_untouched,
                                              const ReportExtras* extras = nullptr);
// JSON file (when report_dir is set) first, then the text on stderr: once the
// text is visible, the file is complete.
void output_report(const Options& options, const CollectedReport& collected,
                   const std::string& file_name);

// The report as a JSON file named `file_name` in report_dir, with
// output_report's checks (created when missing, must be trusted). True with
// *written set to the path; false with *error saying why (report_dir unset
// included). Prints nothing: the caller says it.
bool write_report_file(const Options& options, const Report& report, const std::string& file_name,
                       std::string* written, std::string* error);

// collect_report + output_report. `file_name` is e.g. "connleak.<pid>.json".
// Returns false when there was nothing to report (exit of a process that never
// saw a connection), in which case nothing is printed or written.
bool emit_report(const Options& options, const std::string& trigger, const std::string& file_name,
                 const StateProbe& probe, const ReportExtras* extras = nullptr);

}  // namespace connleak
