#pragma once
// Runs real programs under libconnleak.so and reads back what they reported:
// the e2e face of the one process harness (tests/common/harness.h).
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/common/harness.h"

namespace e2e {

using nlohmann::json;
using test_harness::count;

// Variables of the throwaway PostgreSQL (scripts/pg-server.sh writes them).
const std::map<std::string, std::string>& pg_env();
std::string pg(const std::string& key);  // pg("CONNINFO") -> CONNLEAK_TEST_PG_CONNINFO
// Same for the throwaway MariaDB (scripts/mariadb-server.sh).
const std::map<std::string, std::string>& mysql_env();
std::string mysql(const std::string& key);  // mysql("PORT") -> CONNLEAK_TEST_MYSQL_PORT

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
  std::optional<json> report;      // <report_dir>/connleak.<pid>.json, when written
  std::string report_text;         // raw file content
  std::vector<std::string> files;  // every file left in report_dir
};

Result run(const std::vector<std::string>& argv, const RunOptions& options = {});

std::string bin(const std::string& name);  // a test program from the build tree
// The run's JSON report; throws (failing the test with everything printed) if none.
const json& report_of(const Result& r);
std::uint64_t summary(const Result& r, const char* key);  // report_of(r).summary.key
std::vector<std::string> list_reports(
    const std::string& dir);  // file names, stdout/stderr excluded
std::vector<json> with_status(const json& report, const std::string& status);
// The shape many programs share: three connections, two closed, one kept
// until exit. Checks the summary's counts and that exactly one record leaked,
// of `library`; returns it (null, with the failure recorded, when not one).
json the_one_leak(const Result& r, const std::string& library);
// True when any frame of the stack names `function` (exact match on the name).
bool names_function(const json& frames, const std::string& function);
// Human-readable dump for assertion messages.
std::string describe(const Result& r);
// The value of a "key=123" line the program printed; throws when it did not.
std::int64_t printed(const Result& r, const std::string& key);

}  // namespace e2e

namespace e2e {

// A program under the shim that the test talks to over pipes: send a line,
// then wait for what the program or connleak prints. Waiting on output (with a
// deadline) is the synchronisation; nothing sleeps.
class Session {
 public:
  Session(const std::vector<std::string>& argv, const RunOptions& options = {});
  ~Session();
  Session(const Session&) = delete;
  Session& operator=(const Session&) = delete;

  void send(const std::string& line);
  // Waits until `needle` has appeared at least `times` times on stdout / stderr.
  bool wait_out(const std::string& needle, int times = 1, int timeout_seconds = 30);
  bool wait_err(const std::string& needle, int times = 1, int timeout_seconds = 30);
  // Sends `command`, waits for its "ok" line.
  bool command(const std::string& command, int timeout_seconds = 30);
  const std::string& out() const { return child_->out(); }
  const std::string& err() const { return child_->err(); }
  int pid() const { return child_->pid(); }
  const std::string& report_dir() const { return report_dir_; }
  // Closes stdin, waits for exit, returns everything like run().
  Result finish(int timeout_seconds = 60);

 private:
  bool wait_for(bool on_stdout, const std::string& needle, int times, int timeout_seconds);
  std::string report_dir_;
  std::unique_ptr<test_harness::Child> child_;
};

// Runs a program that holds something (a transaction, a checkout) until its
// stdin closes: stdin is closed once `needle` (the alert) has appeared on
// stderr, or after `timeout_seconds` without it (the test's assertions then fail).
Result run_until_err(const std::vector<std::string>& argv, const RunOptions& options,
                     const std::string& needle, int timeout_seconds = 30);

std::optional<json> read_report(const std::string& path);
// Every JSON report the run left in its directory (exit report, dumps,
// snapshots) whose "trigger" is `trigger`.
std::vector<json> reports_with_trigger(const Result& r, const std::string& trigger);

// Python programs (tests/e2e/python): the script's path, the 1-based line of
// the first line containing `marker`, and whether Python `frames` hold
// `function` at `file`:`line`.
std::string script(const std::string& name);
int line_of(const std::string& file, const std::string& marker);
bool python_names(const json& frames, const std::string& function, const std::string& file,
                  int line);

}  // namespace e2e
