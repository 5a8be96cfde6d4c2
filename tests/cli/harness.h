#pragma once
// Drives the built `connleak` binary (and programs under it) from tests:
// synchronous runs with captured output, and live processes a test can read a
// line from and signal, so tests synchronise on output, never on sleeps.
// The CLI face of the one process harness (tests/common/harness.h).
#include <sys/types.h>

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "tests/common/harness.h"

namespace cli_test {

using test_harness::contains;
using test_harness::lines;
using test_harness::read_file;
using test_harness::write_file;

struct Result {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
  std::string err;
};

struct Options {
  std::vector<std::pair<std::string, std::string>> env;  // set in the child
  std::vector<std::string> unset;                        // removed from the child's environment
  bool pg = false;         // export the test server's CONNLEAK_TEST_PG_* variables
  std::string stdin_data;  // written to stdin, which is then closed (run only)
  std::string cwd;         // working directory of the child; empty: the test's
  int timeout_seconds = 120;
};

// A started process with pipes on stdin, stdout and stderr.
class Process {
 public:
  Process(const std::vector<std::string>& argv, const Options& options = {});
  ~Process();  // kills and reaps a process still running
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return child_.pid(); }
  // Next stdout line (without '\n'); throws on EOF or after `timeout_seconds`.
  std::string read_line(int timeout_seconds = 60);
  void write_stdin(const std::string& data);
  void close_stdin();
  // Closes stdin, drains stdout/stderr until EOF, reaps. Kills on timeout.
  Result wait(int timeout_seconds = 120);

 private:
  test_harness::Child child_;
  std::size_t line_start_ = 0;  // read_line's position in child_.out()
};

Result run(const std::vector<std::string>& argv, const Options& options = {});
// `connleak ARGS...` from the build tree.
Result connleak(const std::vector<std::string>& args, const Options& options = {});

std::string cli_path();
std::string shim_path();
std::string bin(const std::string& name);     // a test program from the build tree
std::string golden(const std::string& name);  // tests/cli/golden/<name>
std::string source_dir();                     // the repository

// Compares `actual` with the golden file; CONNLEAK_UPDATE_GOLDEN=1 rewrites it instead.
// Returns "" on a match, else a diff-like message.
std::string compare_golden(const std::string& name, const std::string& actual);

const std::map<std::string, std::string>& pg_env();
std::string describe(const Result& r);

// A fresh directory under /tmp, removed with everything in it.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

}  // namespace cli_test
