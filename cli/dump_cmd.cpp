// connleak dump PID: a report of a live process, on demand.
#include <CLI/CLI.hpp>
#include <chrono>
#include <memory>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/common.h"
#include "cli/dump_client.h"
#include "cli/journal_files.h"
#include "cli/output.h"
#include "cli/validators.h"
#include "collector/policy/options.h"
#include "collector/report/format/report_json.h"
#include "collector/util/printable.h"

namespace connleak::cli {

namespace {

struct DumpArgs {
  std::string pid;
  std::string format = "text";
  std::string timeout = "10s";
  bool journal = false;
};

// --journal: read the process's journal file, never talk to the process.
int dump_journal(pid_t pid, const std::string& format) {
  std::string error;
  const std::string path = journal_of_process(pid, &error);
  if (path.empty()) throw Failure(error);
  auto j = journal::read_journal(path, &error);
  if (!j) throw Failure(error);
  Report report = killed_report(*j, path, /*alive=*/true);
  write_output("", format == "json" ? to_json_text(report) : render(report, Format::text, {}));
  return 0;
}

int dump_command(const DumpArgs& args) {
  Duration timeout;
  parse_duration(args.timeout, &timeout);                    // validated while parsing the flags
  const auto pid = static_cast<pid_t>(std::stol(args.pid));  // validated while parsing
  if (args.journal) return dump_journal(pid, args.format);
  std::string reply =
      request_dump(pid, std::chrono::milliseconds(static_cast<long long>(timeout.seconds * 1000)));
  Report report;
  try {
    report = report_from_json(nlohmann::json::parse(valid_utf8(reply)));
  } catch (const std::exception& e) {
    throw Failure("process " + std::to_string(pid) +
                  " answered with something that is not a report: " + e.what());
  }
  if (args.format == "json") {
    // The reply as sent: a newer shim's extra fields survive.
    if (reply.back() != '\n') reply += '\n';
    write_output("", reply);
  } else {
    write_output("", render(report, Format::text, {}));
  }
  return 0;
}

}  // namespace

Command add_dump_command(CLI::App& parent) {
  auto args = std::make_shared<DumpArgs>();
  CLI::App* app = parent.add_subcommand(
      "dump", "Print a report of the open connections of a running process under the shim");
  app->add_option("PID", args->pid, "process to ask")
      ->required()
      ->type_name("")
      ->check(CLI::Validator(
          [](std::string& value) -> std::string {
            bool digits = !value.empty() && value.size() <= 9 &&
                          value.find_first_not_of("0123456789") == std::string::npos;
            if (digits && std::stol(value) > 0) return "";
            return "'" + value + "' is not a process id";
          },
          ""));
  app->add_option("--format,-f", args->format, "output format (default: text)")
      ->type_name("text|json")
      ->check(one_of({"text", "json"}));
  app->add_option("--timeout", args->timeout, "give up after D (default: 10s)")
      ->type_name("D")
      ->check(duration_validator());
  app->add_flag("--journal", args->journal,
                "read the process's crash-safe journal instead of asking it: works while it is "
                "stopped (SIGSTOP), deadlocked or without a control socket; open connections "
                "and stacks only");
  app->footer(R"(Asks the process for a dump (trigger "request") and prints it.
The process must run with libconnleak.so preloaded (e.g. under `connleak
run`) and belong to you. It answers on its control socket (the abstract unix
socket connleak.<pid>).
Exit status: 0 printed; 2 when there is no such process, it is not running
under connleak, it is not yours, or it did not answer in time.

Examples:
  connleak dump 4242
  connleak dump --format json 4242 > dump.json
  connleak dump $(pgrep -f my_service))");
  return {app, [args] { return dump_command(*args); }};
}

}  // namespace connleak::cli
