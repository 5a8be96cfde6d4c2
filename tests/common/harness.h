#pragma once
// The one process harness of the e2e and CLI suites: starting a program with a
// chosen environment and pipes on stdin/stdout/stderr, reading what it prints
// with deadlines, waiting for it. tests/e2e/harness.h (programs under the shim,
// their JSON report) and tests/cli/harness.h (the `connleak` command) are thin
// faces of it. Tests synchronise on what a program prints, never on sleeps;
// every wait has a deadline, and a hang is a test failure, not a stuck suite.
#include <sys/types.h>

#include <map>
#include <string>
#include <vector>

namespace test_harness {

using Env = std::map<std::string, std::string>;

// The test runner's own environment, as a map to edit for a child.
Env current_environment();
// KEY=VALUE lines written by scripts/{pg,mariadb}-server.sh; throws, naming the
// fixture, when the file is missing.
Env parse_env_file(const std::string& path, const std::string& fixture);

std::string read_file(const std::string& path);  // throws when unreadable
void write_file(const std::string& path, const std::string& content);
int count(const std::string& haystack, const std::string& needle);
std::vector<std::string> lines(const std::string& text);
bool contains(const std::string& haystack, const std::string& needle);
// mkdtemp under /tmp; `prefix` ends the name before the random part.
std::string make_temp_dir(const std::string& prefix);

struct Exit {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  bool timed_out = false;  // the harness killed it at the deadline
};

// A started process with pipes on its stdin, stdout and stderr.
class Child {
 public:
  // `env` is the child's whole environment; `cwd` empty: the test's.
  Child(const std::vector<std::string>& argv, const Env& env, const std::string& cwd = "");
  ~Child();  // kills and reaps a process still running
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;

  pid_t pid() const { return pid_; }
  void write_stdin(const std::string& data);  // a reader that went away is its business
  void close_stdin();
  // Appends what arrives within `timeout_ms` to out()/err(); false once both
  // pipes reached EOF.
  bool pump(int timeout_ms);
  bool open() const { return out_fd_ >= 0 || err_fd_ >= 0; }
  bool out_open() const { return out_fd_ >= 0; }
  std::string& out() { return out_; }
  std::string& err() { return err_; }

  // Closes stdin and waits, at most `timeout_seconds`, for both pipes to reach
  // EOF (the process and every child holding them are gone), or, with
  // `until_exit`, for the process itself to exit (what a grandchild still
  // holding the pipes prints later is not waited for). Then reaps.
  Exit wait(int timeout_seconds, bool until_exit = false);

 private:
  pid_t pid_ = -1;
  int in_ = -1, out_fd_ = -1, err_fd_ = -1;
  std::string out_, err_;
  bool reaped_ = false;
};

}  // namespace test_harness
