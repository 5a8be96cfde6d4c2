#include "tests/common/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace test_harness {

namespace {

using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Reads what is available into `into`; closes `fd` (and sets it to -1) at EOF.
void drain_once(int& fd, std::string* into) {
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n > 0) into->append(buf, static_cast<std::size_t>(n));
  if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) {
    close(fd);
    fd = -1;
  }
}

// What is already in the pipe, without waiting for more.
void drain_available(int& fd, std::string* into) {
  while (fd >= 0) {
    pollfd p{fd, POLLIN, 0};
    if (poll(&p, 1, 0) <= 0) return;
    drain_once(fd, into);
  }
}

}  // namespace

Env current_environment() {
  Env env;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return env;
}

Env parse_env_file(const std::string& path, const std::string& fixture) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("no server env file at " + path + " (is the " + fixture +
                             " fixture running?)");
  Env vars;
  std::string line;
  while (std::getline(in, line)) {
    auto eq = line.find('=');
    if (eq == std::string::npos || line[0] == '#') continue;
    std::string value = line.substr(eq + 1);
    if (value.size() >= 2 && value.front() == '\'' && value.back() == '\'')
      value = value.substr(1, value.size() - 2);
    vars[line.substr(0, eq)] = value;
  }
  return vars;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot read " + path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& content) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write " + path);
  out << content;
}

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size()))
    ++n;
  return n;
}

std::vector<std::string> lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) out.push_back(line);
  return out;
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string make_temp_dir(const std::string& prefix) {
  std::string templ = "/tmp/" + prefix + "XXXXXX";
  if (!mkdtemp(templ.data())) throw std::runtime_error("mkdtemp failed");
  return templ;
}

Child::Child(const std::vector<std::string>& argv, const Env& env, const std::string& cwd) {
  // Everything that allocates or throws happens before fork: an exception in
  // the child would unwind into a second copy of the test runner.
  std::vector<std::string> env_strings;
  for (const auto& [k, v] : env) env_strings.push_back(k + "=" + v);
  std::vector<char*> envp, args;
  for (std::string& s : env_strings) envp.push_back(s.data());
  envp.push_back(nullptr);
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);

  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    if (!cwd.empty() && chdir(cwd.c_str()) != 0) _exit(126);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
  fcntl(out_fd_, F_SETFL, O_NONBLOCK);
  fcntl(err_fd_, F_SETFL, O_NONBLOCK);
  // A test whose program stopped reading must not die of SIGPIPE writing stdin.
  signal(SIGPIPE, SIG_IGN);
}

Child::~Child() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : {in_, out_fd_, err_fd_})
    if (fd >= 0) close(fd);
}

void Child::write_stdin(const std::string& data) {
  std::size_t off = 0;
  while (in_ >= 0 && off < data.size()) {
    ssize_t n = write(in_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    off += static_cast<std::size_t>(n);
  }
}

void Child::close_stdin() {
  if (in_ >= 0) close(in_);
  in_ = -1;
}

bool Child::pump(int timeout_ms) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (poll(fds, 2, timeout_ms) > 0) {
    if (fds[0].revents) drain_once(out_fd_, &out_);
    if (fds[1].revents) drain_once(err_fd_, &err_);
  }
  return open();
}

Exit Child::wait(int timeout_seconds, bool until_exit) {
  close_stdin();
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  Exit e;
  int pidfd = until_exit ? static_cast<int>(syscall(SYS_pidfd_open, pid_, 0)) : -1;
  if (pidfd < 0) until_exit = false;  // no pidfd: the pipes' EOF is the only signal left
  for (;;) {
    int left = remaining_ms(deadline);
    if (left == 0) {
      e.timed_out = true;
      break;
    }
    if (!until_exit && !open()) break;
    pollfd fds[3] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}, {pidfd, POLLIN, 0}};
    if (poll(fds, 3, left) <= 0) continue;
    if (fds[0].revents) drain_once(out_fd_, &out_);
    if (fds[1].revents) drain_once(err_fd_, &err_);
    if (fds[2].revents) {
      // Exited: take what is already in the pipes, without waiting for EOF.
      drain_available(out_fd_, &out_);
      drain_available(err_fd_, &err_);
      break;
    }
  }
  if (pidfd >= 0) close(pidfd);
  if (e.timed_out) kill(pid_, SIGKILL);
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  if (WIFEXITED(status)) e.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) e.signal = WTERMSIG(status);
  return e;
}

}  // namespace test_harness
