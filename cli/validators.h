#pragma once
// CLI11 validators shared by the subcommands, so a bad value is rejected while
// parsing, with CLI11's one-line "--flag: reason" message.
#include <CLI/CLI.hpp>
#include <string>

#include "collector/policy/options.h"

namespace connleak::cli {

// Same syntax as the shim's duration options, so a value accepted here is never
// rejected by the shim later.
inline CLI::Validator duration_validator() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        Duration d;
        if (parse_duration(value, &d)) return "";
        return "'" + value +
               "' is not a duration (examples: 30s, 1.5s, 250ms, 2m, 1h, 0 to disable)";
      },
      "");  // no extra name: the flag's own type name (D) is enough in --help
}

inline CLI::Validator one_of(std::vector<std::string> choices) {
  std::string list;
  for (const std::string& c : choices) list += (list.empty() ? "" : "|") + c;
  return CLI::Validator(
      [choices, list](std::string& value) -> std::string {
        for (const std::string& c : choices)
          if (value == c) return "";
        return "'" + value + "' is not one of " + list;
      },
      "");
}

}  // namespace connleak::cli
