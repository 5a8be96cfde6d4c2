#pragma once
// Runs the command of `connleak run` as a child that shares our stdin, stdout,
// stderr and process group, forwards the signals a user or supervisor sends us,
// and waits for it.
#include <sys/types.h>

#include <string>
#include <vector>

namespace connleak::cli {

struct ChildExit {
  pid_t pid = 0;
  int exit_code = 0;  // when it exited
  int signal = 0;     // when a signal killed it (exit_code is then 128 + signal)
};

// Signals passed on to the child (SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2).
const std::vector<int>& forwarded_signals();

// fork + execvp with `env`. Throws Failure with exit code 127 when the command
// is not found and 126 when it cannot be executed, after reaping the child.
ChildExit run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env);

}  // namespace connleak::cli
