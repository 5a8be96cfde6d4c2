// connleak report: merge reports, apply suppressions, render for people or CI.
#include <CLI/CLI.hpp>
#include <algorithm>
#include <filesystem>
#include <memory>
#include <optional>
#include <set>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/output.h"
#include "cli/report_files.h"
#include "cli/validators.h"
#include "collector/policy/suppressions.h"
#include "collector/report/report_merge.h"

namespace connleak::cli {

namespace {

struct ReportArgs {
  std::string format = "text";
  std::string suppressions;
  std::string output;
  std::string fail_on = "flagged";
  std::string source_root;
  bool allow_empty = false;
  std::vector<std::string> inputs;
};

// Files named one by one (leaks/*.json) may hold a process's dumps beside its
// exit report: the exit report supersedes them, as in a directory, or their
// connections would be counted twice. Their snapshot markers are kept.
void drop_superseded_dumps(std::vector<Report>& reports) {
  std::set<std::int64_t> exited;
  for (const Report& r : reports)
    if (r.trigger == Trigger::kExit) exited.insert(r.pid);
  reports.erase(std::remove_if(reports.begin(), reports.end(),
                               [&](const Report& r) {
                                 return r.trigger != Trigger::kExit && exited.count(r.pid);
                               }),
                reports.end());
}

int report_command(const ReportArgs& args) {
  std::optional<Suppressions> suppressions;
  if (!args.suppressions.empty()) {
    std::string error;
    suppressions = Suppressions::load(args.suppressions, &error);
    if (!suppressions) throw Failure(error);
  }
  std::vector<Report> reports = load_reports(args.inputs);
  if (reports.empty() && !args.allow_empty) throw Failure("no report could be read");

  // Snapshot dumps are folded into one trigger by the merge; pictures mark each.
  std::vector<SnapshotMark> snapshots = snapshot_marks(reports);
  drop_superseded_dumps(reports);
  Report merged = merge_reports(std::move(reports));
  apply_all_suppressions(merged, suppressions);

  RenderOptions options;
  options.suppressions = suppressions ? &*suppressions : nullptr;
  options.source_root = args.source_root;
  options.snapshots = std::move(snapshots);
  if (options.source_root.empty()) {
    std::error_code ec;
    options.source_root = std::filesystem::current_path(ec).string();
  }
  write_output(args.output, render(merged, parse_format(args.format), options));
  return has_failures(merged, parse_fail_on(args.fail_on)) ? kExitLeaks : 0;
}

}  // namespace

Command add_report_command(CLI::App& parent) {
  auto args = std::make_shared<ReportArgs>();
  CLI::App* app = parent.add_subcommand(
      "report",
      "Merge, suppress and render reports as text, JSON, SARIF, JUnit, a trace, a "
      "timeline or metrics");
  app->add_option("--format,-f", args->format, "output format (default: text)")
      ->type_name("text|json|sarif|junit|trace|html|prometheus")
      ->check(one_of({"text", "json", "sarif", "junit", "trace", "html", "prometheus"}));
  app->add_option("--suppressions", args->suppressions,
                  "LeakSanitizer-style suppressions file (leak:<pattern> lines); suppressed "
                  "connections are left out and counted")
      ->type_name("FILE");
  app->add_option("--output,-o", args->output, "write to FILE instead of stdout")
      ->type_name("FILE");
  app->add_option("--fail-on", args->fail_on,
                  "exit 23 if: flagged = any leak or alert is left (default); leaked = a leak is "
                  "left; never = always exit 0")
      ->type_name("leaked|flagged|never")
      ->check(one_of({"leaked", "flagged", "never"}));
  app->add_option("--source-root", args->source_root,
                  "repository root: SARIF/JUnit paths under it are made relative, as code "
                  "scanning expects (default: the current directory)")
      ->type_name("DIR");
  app->add_flag("--allow-empty", args->allow_empty,
                "no report at all is a clean result, not an error (a CI run that never "
                "connected)");
  app->add_option("FILE_OR_DIR", args->inputs, "report files, or directories holding them")
      ->required()
      ->type_name("");
  app->footer(R"(Merges connleak JSON reports and renders them for people (text) or CI
(json, sarif, junit). A directory contributes each process's exit report
(connleak.<pid>.json), or its latest dump when it has none. The same
acquisition site in several processes is one group with a count. A malformed
or unreadable report is named in a warning and skipped.
Exit status: 0 clean; 23 when something unsuppressed is left (see --fail-on);
2 for a bad flag, an unreadable suppressions file, or when no report could be read.

Examples:
  connleak report leaks/
  connleak report --suppressions connleak.supp --format sarif -o connleak.sarif leaks/
  connleak report --format junit -o connleak-junit.xml leaks/
  connleak report --format trace -o trace.json leaks/   (Perfetto UI, chrome://tracing)
  connleak report --format html -o report.html leaks/   (one self-contained file)
  connleak report --format prometheus -o connleak.prom leaks/
  connleak report --format json /tmp/leaks/connleak.4242.json > merged.json)");
  return {app, [args] { return report_command(*args); }};
}

}  // namespace connleak::cli
