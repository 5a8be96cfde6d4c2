#pragma once
// Runs real programs under libconnleak.so and reads back what they reported.
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace e2e {

using nlohmann::json;

// Variables of the throwaway PostgreSQL (scripts/pg-server.sh writes them).
const std::map<std::string, std::string>& pg_env();
std::string pg(const std::string& key);  // pg("CONNINFO") -> CONNLEAK_TEST_PG_CONNINFO

struct RunOptions {
  std::string options;  // appended to CONNLEAK_OPTIONS after report_dir=...
  std::vector<std::pair<std::string, std::string>> env;
  bool preload = true;
  int timeout_seconds = 120;
};

struct Result {
  int pid = 0;
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
  std::string report_dir;
  std::optional<json> report;  // <report_dir>/connleak.<pid>.json, when written
  std::string report_text;     // raw file content
  std::vector<std::string> files;  // every file left in report_dir
};

Result run(const std::vector<std::string>& argv, const RunOptions& options = {});

std::string bin(const std::string& name);  // a test program from the build tree
std::vector<json> with_status(const json& report, const std::string& status);
// True when any frame of the stack names `function` (exact match on the name).
bool names_function(const json& frames, const std::string& function);
// Human-readable dump for assertion messages.
std::string describe(const Result& r);

}  // namespace e2e
