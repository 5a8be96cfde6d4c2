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
#include "collector/report/dump_reply.h"
#include "collector/report/format/report_json.h"
#include "collector/util/printable.h"

namespace connleak::cli {

namespace {

struct DumpArgs {
  std::string pid;
  std::string format = "text";
  bool json = false;  // --json: --format json
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

// One line on stderr about the file the process left (stdout stays the report).
void say_where_the_file_is(pid_t pid, const DumpReply& reply) {
  const std::string who = "process " + std::to_string(pid);
  if (reply.file) {
    print_note(who + " also wrote this dump to " + printable(*reply.file));
  } else if (reply.no_file) {
    print_note("no file written: " + who + " has " +
               (*reply.no_file == "report_dir is not set"
                    ? std::string("no report_dir (run it under `connleak run`, or set "
                                  "CONNLEAK_OPTIONS=report_dir=DIR)")
                    : "report_dir, but: " + printable(*reply.no_file)));
  } else {
    print_note("no file written: " + who +
               " runs an older libconnleak.so, which does not write `connleak dump` files");
  }
}

int dump_command(const DumpArgs& args) {
  Duration timeout;
  parse_duration(args.timeout, &timeout);                    // validated while parsing the flags
  const auto pid = static_cast<pid_t>(std::stol(args.pid));  // validated while parsing
  const std::string format = args.json ? "json" : args.format;
  if (args.journal) return dump_journal(pid, format);
  DumpReply reply = split_dump_reply(
      request_dump(pid, std::chrono::milliseconds(static_cast<long long>(timeout.seconds * 1000))));
  Report report;
  try {
    report = report_from_json(nlohmann::json::parse(valid_utf8(reply.report)));
  } catch (const std::exception& e) {
    throw Failure("process " + std::to_string(pid) +
                  " answered with something that is not a report: " + e.what());
  }
  if (format == "json") {
    // The reply as sent: a newer shim's extra fields survive.
    if (reply.report.back() != '\n') reply.report += '\n';
    write_output("", reply.report);
  } else {
    write_output("", render(report, Format::text, {}));
  }
  say_where_the_file_is(pid, reply);
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
  app->add_flag("--json", args->json, "print the JSON report instead of text (as --format json)");
  app->add_option("--timeout", args->timeout, "give up after D (default: 10s)")
      ->type_name("D")
      ->check(duration_validator());
  app->add_flag("--journal", args->journal,
                "read the process's crash-safe journal instead of asking it: works while it is "
                "stopped (SIGSTOP), deadlocked or without a control socket; open connections "
                "and stacks only");
  app->footer(R"(Asks the process for a dump (trigger "request") and prints it. With report_dir
set (as under `connleak run`), the process also leaves it in report_dir as
connleak.<pid>.<n>.json, numbered with its signal dumps; one line on stderr
says where (or why no file was written).
The process must run with libconnleak.so preloaded (e.g. under `connleak
run`) and belong to you. It answers on its control socket (the abstract unix
socket connleak.<pid>).
Exit status: 0 printed; 2 when there is no such process, it is not running
under connleak, it is not yours, or it did not answer in time.

Examples:
  connleak dump 4242
  connleak dump --json 4242 > dump.json
  connleak dump $(pgrep -f my_service))");
  return {app, [args] { return dump_command(*args); }};
}

}  // namespace connleak::cli
