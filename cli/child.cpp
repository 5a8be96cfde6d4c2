#include "cli/child.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "cli/common.h"

namespace connleak::cli {

namespace {

// Restores the signal mask and the SIGCHLD disposition however run_child leaves.
class SignalScope {
 public:
  explicit SignalScope(const sigset_t& block) {
    sigprocmask(SIG_BLOCK, &block, &old_mask_);
    // An inherited SIG_IGN for SIGCHLD would make the kernel reap the child
    // itself and waitpid would lose its exit status.
    struct sigaction dfl {};
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(SIGCHLD, &dfl, &old_chld_);
  }
  ~SignalScope() {
    sigaction(SIGCHLD, &old_chld_, nullptr);
    sigprocmask(SIG_SETMASK, &old_mask_, nullptr);
  }
  SignalScope(const SignalScope&) = delete;
  SignalScope& operator=(const SignalScope&) = delete;
  const sigset_t& old_mask() const { return old_mask_; }

 private:
  sigset_t old_mask_{};
  struct sigaction old_chld_ {};
};

ChildExit decode(pid_t pid, int status) {
  ChildExit r;
  r.pid = pid;
  if (WIFSIGNALED(status)) {
    r.signal = WTERMSIG(status);
    r.exit_code = 128 + r.signal;
  } else {
    r.exit_code = WEXITSTATUS(status);
  }
  return r;
}

}  // namespace

const std::vector<int>& forwarded_signals() {
  static const std::vector<int> signals = {SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2};
  return signals;
}

ChildExit run_child(const std::vector<std::string>& argv, const std::vector<std::string>& env) {
  // Everything that allocates happens before fork.
  std::vector<char*> args, envp;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  for (const std::string& e : env) envp.push_back(const_cast<char*>(e.c_str()));
  envp.push_back(nullptr);

  // The signals stay blocked from before fork until the child is reaped and
  // are taken with sigwaitinfo: none can arrive before we know the child's pid,
  // and no handler runs at an awkward moment.
  sigset_t wait_set;
  sigemptyset(&wait_set);
  sigaddset(&wait_set, SIGCHLD);
  for (int sig : forwarded_signals()) sigaddset(&wait_set, sig);
  SignalScope scope(wait_set);

  // The child reports a failed exec through this close-on-exec pipe: EOF means exec worked.
  int report[2];
  if (pipe2(report, O_CLOEXEC) != 0) throw Failure(std::string("pipe: ") + std::strerror(errno));
  pid_t pid = fork();
  if (pid < 0) {
    int err = errno;
    close(report[0]);
    close(report[1]);
    throw Failure(std::string("cannot start a process: ") + std::strerror(err));
  }
  if (pid == 0) {
    close(report[0]);
    // Signal masks survive exec: give the command the mask we were started with.
    sigprocmask(SIG_SETMASK, &scope.old_mask(), nullptr);
    execvpe(args[0], args.data(), envp.data());
    int err = errno;
    ssize_t ignored = write(report[1], &err, sizeof err);
    (void)ignored;
    _exit(kExitNotFound);
  }
  close(report[1]);
  int exec_errno = 0;
  ssize_t got;
  do got = read(report[0], &exec_errno, sizeof exec_errno);
  while (got < 0 && errno == EINTR);
  close(report[0]);
  if (got == static_cast<ssize_t>(sizeof exec_errno)) {
    int status;
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    if (exec_errno == ENOENT) throw Failure("command not found: " + argv[0], kExitNotFound);
    throw Failure("cannot run '" + argv[0] + "': " + std::strerror(exec_errno), kExitCannotExec);
  }

  for (;;) {
    siginfo_t info{};
    int sig = sigwaitinfo(&wait_set, &info);
    if (sig < 0) continue;  // EINTR (e.g. SIGSTOP/SIGCONT): keep waiting
    if (sig == SIGCHLD) {
      int status;
      pid_t done = waitpid(pid, &status, WNOHANG);
      if (done == pid) return decode(pid, status);
      if (done < 0 && errno == ECHILD)
        throw Failure("lost track of the command (pid " + std::to_string(pid) + ")");
      continue;  // stopped or continued, not exited
    }
    // A terminal sends SIGINT/SIGQUIT/SIGHUP to its whole foreground process
    // group, which includes the child (it stays in ours): passing it on would
    // deliver it twice, and a second ^C means "abort now" to many programs.
    if (info.si_code == SI_KERNEL) continue;
    kill(pid, sig);
  }
}

}  // namespace connleak::cli
