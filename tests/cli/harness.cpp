#include "tests/cli/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace cli_test {

namespace {

using Clock = std::chrono::steady_clock;

std::map<std::string, std::string> parse_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("no server env file at " + path + " (is the pg fixture running?)");
  std::map<std::string, std::string> vars;
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

int remaining_ms(Clock::time_point deadline) {
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Reads what is available; false at EOF.
bool drain(int fd, std::string* into) {
  char buf[65536];
  ssize_t n = read(fd, buf, sizeof buf);
  if (n < 0 && (errno == EINTR || errno == EAGAIN)) return true;
  if (n <= 0) return false;
  into->append(buf, static_cast<std::size_t>(n));
  return true;
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const Options& options) {
  // Everything that allocates or throws happens before fork.
  std::map<std::string, std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    auto eq = entry.find('=');
    if (eq != std::string::npos) env[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  // Tests decide the shim's environment themselves.
  env.erase("LD_PRELOAD");
  env.erase("CONNLEAK_OPTIONS");
  if (options.pg)
    for (const auto& [k, v] : pg_env()) env[k] = v;
  for (const std::string& k : options.unset) env.erase(k);
  for (const auto& [k, v] : options.env) env[k] = v;
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
    if (!options.cwd.empty() && chdir(options.cwd.c_str()) != 0) _exit(126);
    execvpe(args[0], args.data(), envp.data());
    _exit(127);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_ = out[0];
  err_ = err[0];
  fcntl(out_, F_SETFL, O_NONBLOCK);
  fcntl(err_, F_SETFL, O_NONBLOCK);
  // A test that stops reading must not die of SIGPIPE when writing stdin.
  signal(SIGPIPE, SIG_IGN);
}

Process::~Process() {
  if (!reaped_ && pid_ > 0) {
    kill(pid_, SIGKILL);
    int status;
    waitpid(pid_, &status, 0);
  }
  for (int fd : {in_, out_, err_})
    if (fd >= 0) close(fd);
}

std::string Process::read_line(int timeout_seconds) {
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    auto nl = out_buf_.find('\n');
    if (nl != std::string::npos) {
      std::string line = out_buf_.substr(0, nl);
      out_buf_.erase(0, nl + 1);
      return line;
    }
    pollfd fds[2] = {{out_, POLLIN, 0}, {err_, POLLIN, 0}};
    int n = poll(fds, 2, remaining_ms(deadline));
    if (n == 0)
      throw std::runtime_error("no line on stdout within the timeout; stderr so far: " + err_buf_);
    if (n < 0) continue;
    if (fds[1].revents) drain(err_, &err_buf_);
    if (fds[0].revents && !drain(out_, &out_buf_))
      throw std::runtime_error("stdout closed before a full line; stderr: " + err_buf_);
  }
}

void Process::write_stdin(const std::string& data) {
  std::size_t off = 0;
  while (off < data.size()) {
    ssize_t n = write(in_, data.data() + off, data.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // the process stopped reading: its business
    off += static_cast<std::size_t>(n);
  }
}

void Process::close_stdin() {
  if (in_ >= 0) close(in_);
  in_ = -1;
}

Result Process::wait(int timeout_seconds) {
  close_stdin();
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  bool out_open = true, err_open = true;
  // Both pipes reach EOF when the process and every child holding them exit.
  while ((out_open || err_open) && remaining_ms(deadline) > 0) {
    pollfd fds[2] = {{out_open ? out_ : -1, POLLIN, 0}, {err_open ? err_ : -1, POLLIN, 0}};
    int n = poll(fds, 2, remaining_ms(deadline));
    if (n <= 0) continue;
    if (fds[0].revents) out_open = drain(out_, &out_buf_);
    if (fds[1].revents) err_open = drain(err_, &err_buf_);
  }
  if (out_open || err_open) kill(pid_, SIGKILL);  // a hang is a failure, not a stuck suite
  int status = 0;
  waitpid(pid_, &status, 0);
  reaped_ = true;
  Result r;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = out_buf_;
  r.err = err_buf_;
  if (out_open || err_open)
    r.err += "\n[harness: killed after " + std::to_string(timeout_seconds) + "s]";
  return r;
}

Result run(const std::vector<std::string>& argv, const Options& options) {
  Process p(argv, options);
  if (!options.stdin_data.empty()) p.write_stdin(options.stdin_data);
  return p.wait(options.timeout_seconds);
}

Result connleak(const std::vector<std::string>& args, const Options& options) {
  std::vector<std::string> argv = {cli_path()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv, options);
}

std::string cli_path() {
  return CONNLEAK_CLI;
}
std::string shim_path() {
  return CONNLEAK_SHIM_PATH;
}
std::string bin(const std::string& name) {
  return std::string(CONNLEAK_TEST_BIN_DIR) + "/" + name;
}
std::string golden(const std::string& name) {
  return std::string(CONNLEAK_CLI_GOLDEN_DIR) + "/" + name;
}
std::string source_dir() {
  return CONNLEAK_SOURCE_DIR;
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

std::string compare_golden(const std::string& name, const std::string& actual) {
  const char* update = std::getenv("CONNLEAK_UPDATE_GOLDEN");
  if (update && std::string(update) == "1") {
    write_file(golden(name), actual);
    return "";
  }
  std::string expected = read_file(golden(name));
  if (expected == actual) return "";
  std::vector<std::string> e = lines(expected), a = lines(actual);
  std::ostringstream msg;
  msg << "output differs from golden/" << name
      << " (rerun with CONNLEAK_UPDATE_GOLDEN=1 to accept)\n";
  for (std::size_t i = 0; i < std::max(e.size(), a.size()); ++i) {
    std::string el = i < e.size() ? e[i] : "<missing>", al = i < a.size() ? a[i] : "<missing>";
    if (el != al) {
      msg << "first difference at line " << i + 1 << ":\n  expected: " << el
          << "\n  actual:   " << al << "\n";
      break;
    }
  }
  msg << "--- actual ---\n" << actual;
  return msg.str();
}

const std::map<std::string, std::string>& pg_env() {
  // CONNLEAK_PG_ENV_FILE points the suite at a server started by hand.
  static const auto vars =
      parse_env_file(std::getenv("CONNLEAK_PG_ENV_FILE") ? std::getenv("CONNLEAK_PG_ENV_FILE")
                                                         : CONNLEAK_PG_ENV_FILE);
  return vars;
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

std::string describe(const Result& r) {
  std::ostringstream s;
  s << "exit=" << r.exit_code << " signal=" << r.signal << "\n--- stderr ---\n"
    << r.err << "\n--- stdout ---\n"
    << r.out;
  return s.str();
}

TempDir::TempDir() {
  char templ[] = "/tmp/connleak-cli-test-XXXXXX";
  if (!mkdtemp(templ)) throw std::runtime_error("mkdtemp failed");
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace cli_test
