#pragma once
// The subcommands. Each adds itself to the top-level CLI11 app and returns
// what to run once parsing chose it; parsing errors never reach them.
#include <functional>

namespace CLI {
class App;
}

namespace connleak::cli {

struct Command {
  CLI::App* app = nullptr;
  std::function<int()> run;
};

Command add_run_command(CLI::App& parent);
Command add_report_command(CLI::App& parent);
Command add_dump_command(CLI::App& parent);

}  // namespace connleak::cli
