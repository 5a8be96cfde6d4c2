// connleak: the command-line tool. Parsing and error reporting live here; each
// subcommand is its own file.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <string>
#include <vector>

#include "cli/commands.h"
#include "cli/common.h"

using connleak::cli::Command;
using connleak::cli::kExitUsage;

namespace {

// CLI11 errors can span lines (e.g. a list of extras); the contract wants one.
std::string first_line(std::string text) {
  std::size_t nl = text.find('\n');
  if (nl != std::string::npos) text.erase(nl);
  return text;
}

// CLI11 lists extras with the "--" separator among them ("not expected: -- --bogus").
std::string extras_message(const std::string& what) {
  std::size_t colon = what.find(": ");
  if (colon == std::string::npos) return what;
  std::string list, word;
  for (std::size_t i = colon + 2; i <= what.size(); ++i) {
    if (i == what.size() || what[i] == ' ') {
      if (!word.empty() && word != "--") list += (list.empty() ? "" : " ") + word;
      word.clear();
    } else {
      word += what[i];
    }
  }
  return (list.find(' ') == std::string::npos ? "unknown argument " : "unknown arguments ") + list;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"connleak: find database connections that are never closed.", "connleak"};
  app.set_version_flag("--version", CONNLEAK_VERSION);
  app.require_subcommand(1, 1);
  app.footer(R"(Run 'connleak COMMAND --help' for a command's flags and examples.

Examples:
  connleak run --threshold 30s --report-dir leaks/ -- pytest -q tests/
  connleak report --suppressions connleak.supp --format sarif leaks/ > connleak.sarif
  connleak dump 4242)");
  std::vector<Command> commands = {connleak::cli::add_run_command(app),
                                   connleak::cli::add_report_command(app),
                                   connleak::cli::add_dump_command(app)};

  if (argc < 2) {
    std::fputs(app.help().c_str(), stderr);
    return kExitUsage;
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string where = "connleak";
    for (const Command& c : commands)
      if (c.app->parsed()) where += " " + c.app->get_name();
    std::string message = first_line(e.what());
    std::string first = argv[1];
    if (dynamic_cast<const CLI::ExtrasError*>(&e)) message = extras_message(message);
    if (where == "connleak" && !first.empty() && first[0] != '-')
      message = "unknown command '" + first + "' (commands: run, report, dump)";
    else if (where == "connleak" && !first.empty() && first[0] == '-')
      message = "unknown option " + first.substr(0, first.find('='));
    else if (where == "connleak" && e.get_name() == "RequiredError")
      message = "missing command (run, report or dump)";
    std::fprintf(stderr, "%s: %s; see '%s --help'\n", where.c_str(), message.c_str(),
                 where.c_str());
    return kExitUsage;
  }

  for (const Command& c : commands) {
    if (!c.app->parsed()) continue;
    try {
      return c.run();
    } catch (const connleak::cli::Failure& f) {
      connleak::cli::print_error(first_line(f.what()));
      return f.code;
    } catch (const std::exception& e) {
      // Nothing should get here; if it does, it is still one line and a usage-class exit.
      connleak::cli::print_error(first_line(e.what()));
      return kExitUsage;
    }
  }
  return kExitUsage;
}
