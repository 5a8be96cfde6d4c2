// connleak run: the command under the shim, one merged summary, and an exit
// status a CI job can gate on.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>

#include "cli/child.h"
#include "cli/commands.h"
#include "cli/common.h"
#include "cli/journal_files.h"
#include "cli/output.h"
#include "cli/report_files.h"
#include "cli/run_env.h"
#include "cli/validators.h"
#include "collector/policy/options.h"
#include "collector/policy/suppressions.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_merge.h"
#include "collector/report/report_writer.h"
#include "collector/util/printable.h"
#include "collector/util/timeutil.h"

namespace connleak::cli {

namespace {

namespace fs = std::filesystem;

struct RunArgs {
  std::optional<std::string> threshold;
  std::optional<std::string> txn_threshold;
  std::string report_dir;
  std::string metrics_file;
  std::string fail_on = "leaked";
  std::string suppressions;
  std::vector<std::string> command;
};

// A report directory of our own, removed when the run is over (also when the
// command could not be started).
class TempDir {
 public:
  TempDir() = default;
  ~TempDir() {
    if (path_.empty()) return;
    std::error_code ignored;
    fs::remove_all(path_, ignored);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  const std::string& create() {
    const char* tmp = std::getenv("TMPDIR");
    std::string templ = std::string(tmp && *tmp ? tmp : "/tmp") + "/connleak-run-XXXXXX";
    if (!mkdtemp(templ.data()))
      throw Failure("cannot create a temporary report directory in " + templ);
    path_ = templ;
    return path_;
  }

 private:
  std::string path_;
};

std::string absolute(const std::string& path) {
  std::error_code ec;
  fs::path p = fs::absolute(path, ec);
  return ec ? path : p.lexically_normal().string();
}

int run_command(const RunArgs& args) {
  // Everything that can be wrong with the flags is found before the command starts.
  std::optional<Suppressions> suppressions;
  if (!args.suppressions.empty()) {
    std::string error;
    suppressions = Suppressions::load(args.suppressions, &error);
    if (!suppressions) throw Failure(error);
  }
  const std::string shim = find_shim();
  const char* env_options = std::getenv("CONNLEAK_OPTIONS");

  // A report_dir the user already exported is kept (and not deleted), as if given with
  // --report-dir.
  std::string dir = args.report_dir;
  if (dir.empty() && env_options) dir = parse_options(env_options, nullptr).report_dir;
  TempDir temp;
  if (dir.empty()) {
    dir = temp.create();
  } else {
    // Absolute: a process of the tree that changes directory must write to the same place.
    dir = absolute(dir);
    std::string error;
    if (!ensure_directory(dir, &error)) throw Failure("--report-dir: " + error);
  }

  ShimFlags flags;
  flags.threshold = args.threshold;
  flags.txn_threshold = args.txn_threshold;
  flags.report_dir = dir;
  if (!args.suppressions.empty()) flags.suppressions = absolute(args.suppressions);
  if (!args.metrics_file.empty()) flags.metrics_file = absolute(args.metrics_file);

  const auto before = exit_reports_in(dir);
  const std::int64_t run_started_ns = now().real_ns;
  // Python programs of the tree import connleak's sitecustomize (pool checkouts).
  const std::string python_hooks = find_python_hooks();
  auto env = child_environment(
      preload_value(std::getenv("LD_PRELOAD"), shim), options_value(env_options, flags),
      python_hooks.empty() ? std::string()
                           : python_path_value(std::getenv("PYTHONPATH"), python_hooks));
  // A pytest of the tree loads connleak's plugin (its pytest11 entry point is
  // on PYTHONPATH); this turns it on, failing each leaking test unless the
  // run itself would not fail on leaks. An exported CONNLEAK_PYTEST is kept.
  if (!python_hooks.empty() && !std::getenv("CONNLEAK_PYTEST"))
    env.push_back(std::string("CONNLEAK_PYTEST=") + (args.fail_on == "never" ? "report" : "fail"));
  ChildExit child = run_child(args.command, env);

  // Each process of the tree wrote its own exit report; a report already in
  // a reused --report-dir before the run is not this run's.
  std::vector<Report> reports;
  for (const std::string& file : written_since(dir, before)) {
    std::string error;
    if (auto r = read_report(file, &error))
      reports.push_back(std::move(*r));
    else
      print_warning(error);
  }
  // Processes of the tree that died without their exit report (killed,
  // aborted, crashed) left their journal: what they held at death.
  std::vector<std::int64_t> killed_pids;
  for (Report& r : killed_reports_in(dir, run_started_ns)) {
    killed_pids.push_back(r.pid);
    reports.push_back(std::move(r));
  }
  const bool child_journaled =
      std::find(killed_pids.begin(), killed_pids.end(), child.pid) != killed_pids.end();
  // A command killed by a signal (SIGSEGV, abort, SIGKILL) wrote no exit
  // report: "no leaks: 0 connection(s)" would be a false all-clear.
  std::string missing;
  if (child.signal != 0 && child_journaled) {
    const char* abbrev = sigabbrev_np(child.signal);
    missing = "connleak run: " + printable(redact_argv({args.command.front()}).front()) + " (pid " +
              std::to_string(child.pid) + ") was killed by signal " + std::to_string(child.signal) +
              (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string()) +
              " before writing its exit report; what it held comes from its journal (trigger "
              "killed)\n";
  } else if (child.signal != 0 &&
             std::none_of(reports.begin(), reports.end(),
                          [&](const Report& r) { return r.pid == child.pid; })) {
    const char* abbrev = sigabbrev_np(child.signal);
    missing = "connleak run: " + printable(redact_argv({args.command.front()}).front()) + " (pid " +
              std::to_string(child.pid) + ") was killed by signal " + std::to_string(child.signal) +
              (abbrev ? std::string(" (SIG") + abbrev + ")" : std::string()) +
              " and wrote no report: the connections it held are unknown\n";
  }
  MergeOptions merge;
  merge.pid = child.pid;
  merge.ppid = getpid();
  merge.argv =
      redact_argv(args.command);  // the banner must not print a password from the command line
  const std::size_t report_count = reports.size();
  Report merged = merge_reports(std::move(reports), merge);
  apply_all_suppressions(merged, suppressions);

  RenderOptions render_options;
  render_options.suppressions = suppressions ? &*suppressions : nullptr;
  // The shim in each process may already have printed its own report; the
  // heading marks the verdict that the exit status is based on.
  std::string heading;
  if (report_count > 0) {
    heading = "connleak run: merged summary of " + std::to_string(report_count) + " report(s)";
    if (temp.path().empty()) heading += " in " + dir;
    heading += "\n";
  }
  if (report_count == 0 && !missing.empty())
    write_stderr(missing);
  else
    write_stderr(heading + render(merged, Format::text, render_options) + missing);

  if (child.exit_code != 0) return child.exit_code;
  return has_failures(merged, parse_fail_on(args.fail_on)) ? kExitLeaks : 0;
}

// CLI11 would print "CMD..."; the `--` is the part users forget.
class RunFormatter : public CLI::Formatter {
 public:
  std::string make_usage(const CLI::App*, std::string name) const override {
    return "Usage: " + name + " [OPTIONS] -- CMD [ARGS...]\n";
  }
};

}  // namespace

Command add_run_command(CLI::App& parent) {
  auto args = std::make_shared<RunArgs>();
  CLI::App* app = parent.add_subcommand(
      "run", "Run a command under the shim; print one merged summary; exit 23 if it leaked");
  app->add_option("--threshold", args->threshold,
                  "flag a connection open longer than D (alert 'lifetime'); 0 disables")
      ->type_name("D")
      ->check(duration_validator());
  app->add_option("--txn-threshold", args->txn_threshold,
                  "flag a connection inside one open transaction longer than D "
                  "(alert 'idle_in_transaction'); 0 disables")
      ->type_name("D")
      ->check(duration_validator());
  app->add_option("--report-dir", args->report_dir,
                  "keep every process's connleak.<pid>.json in DIR (default: a temporary "
                  "directory, removed afterwards)")
      ->type_name("DIR");
  app->add_option("--fail-on", args->fail_on,
                  "when CMD exits 0, exit 23 if: leaked = a connection was never closed "
                  "(default); flagged = that, or any alert; never = keep CMD's status")
      ->type_name("leaked|flagged|never")
      ->check(one_of({"leaked", "flagged", "never"}));
  app->add_option("--suppressions", args->suppressions,
                  "LeakSanitizer-style suppressions file (leak:<pattern> lines)")
      ->type_name("FILE");
  app->add_option("--metrics-file", args->metrics_file,
                  "keep FILE a Prometheus text file of the program's connections, pools and "
                  "checkouts, rewritten every metrics_interval (10s) and at exit (for "
                  "node_exporter's textfile collector); one process per file")
      ->type_name("FILE");
  app->add_option("CMD", args->command, "the command to run and its arguments, after --")
      ->required()
      ->type_name("");
  // Everything from the first positional on belongs to CMD, even "--flags".
  app->positionals_at_end();
  app->formatter(std::make_shared<RunFormatter>());
  app->footer(R"(Runs CMD with libconnleak.so preloaded into it and every process it starts.
Each process writes its own report; CONNLEAK_OPTIONS already in the
environment is kept, and these flags override it.
Exit status: CMD's own; 23 when CMD exited 0 but --fail-on matched; 128+N when
CMD was killed by signal N; 127 when CMD is not found; 2 for a bad flag.
SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1 and SIGUSR2 are passed on to CMD.

Examples:
  connleak run -- ./my_service --port 8080
  connleak run --threshold 30s --report-dir leaks/ -- pytest -q tests/
  connleak run --fail-on flagged --txn-threshold 5s -- make check
  connleak run --suppressions connleak.supp -- ./integration_tests)");
  return {app, [args] { return run_command(*args); }};
}

}  // namespace connleak::cli
