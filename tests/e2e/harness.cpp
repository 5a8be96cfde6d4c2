#include "tests/e2e/harness.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace e2e {

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, std::string> parse_env_file(const std::string& path,
                                                  const std::string& fixture) {
  std::ifstream in(path);
  if (!in)
    throw std::runtime_error("no server env file at " + path + " (is the " + fixture +
                             " fixture running?)");
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

}  // namespace

std::vector<std::string> list_reports(const std::string& dir) {
  std::vector<std::string> files;
  if (DIR* d = opendir(dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n != "stdout" && n != "stderr") files.push_back(n);
    }
    closedir(d);
  }
  return files;
}

const std::map<std::string, std::string>& pg_env() {
  // CONNLEAK_PG_ENV_FILE lets a developer point the suite at a server started by hand.
  static const auto vars = parse_env_file(
      getenv("CONNLEAK_PG_ENV_FILE") ? getenv("CONNLEAK_PG_ENV_FILE") : CONNLEAK_PG_ENV_FILE, "pg");
  return vars;
}

const std::map<std::string, std::string>& mysql_env() {
  // CONNLEAK_MYSQL_ENV_FILE: same override, for a MariaDB started by hand.
  static const auto vars =
      parse_env_file(getenv("CONNLEAK_MYSQL_ENV_FILE") ? getenv("CONNLEAK_MYSQL_ENV_FILE")
                                                       : CONNLEAK_MYSQL_ENV_FILE,
                     "mariadb");
  return vars;
}

std::string mysql(const std::string& key) {
  auto it = mysql_env().find("CONNLEAK_TEST_MYSQL_" + key);
  if (it == mysql_env().end()) throw std::runtime_error("mariadb env lacks " + key);
  return it->second;
}

std::string pg(const std::string& key) {
  auto it = pg_env().find("CONNLEAK_TEST_PG_" + key);
  if (it == pg_env().end()) throw std::runtime_error("server env lacks " + key);
  return it->second;
}

std::string bin(const std::string& name) {
  return std::string(CONNLEAK_E2E_BIN_DIR) + "/" + name;
}

// What a child under the shim needs, all built before fork: an exception in
// the child would unwind into a second copy of the test runner.
struct ChildPlan {
  std::string report_dir;
  std::map<std::string, std::string> env;
  std::vector<std::string> argv;
  std::vector<char*> args;
  std::string options;
};

ChildPlan plan_child(const std::vector<std::string>& argv, const RunOptions& options) {
  ChildPlan plan;
  char dir_template[] = "/tmp/connleak-e2e-XXXXXX";
  if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
  plan.report_dir = dir_template;
  plan.env = pg_env();
  // MariaDB's variables when its fixture runs; tests that need them ask mysql(),
  // which fails loudly when it does not.
  try {
    plan.env.insert(mysql_env().begin(), mysql_env().end());
  } catch (const std::runtime_error&) {
  }
  plan.argv = argv;
  for (std::string& a : plan.argv) plan.args.push_back(a.data());
  plan.args.push_back(nullptr);
  plan.options = "report_dir=" + plan.report_dir;
  if (!options.options.empty()) plan.options += ":" + options.options;
  return plan;
}

// In the child, after its fds are in place: environment, then exec.
[[noreturn]] void exec_child(const ChildPlan& plan, const RunOptions& options) {
  for (const auto& [k, v] : plan.env) setenv(k.c_str(), v.c_str(), 1);
  if (options.preload) {
    setenv("LD_PRELOAD", CONNLEAK_SHIM_PATH, 1);
    setenv("CONNLEAK_OPTIONS", plan.options.c_str(), 1);
  } else {
    unsetenv("LD_PRELOAD");
  }
  for (const auto& [k, v] : options.env) setenv(k.c_str(), v.c_str(), 1);
  execvp(plan.args[0], plan.args.data());
  _exit(127);
}

Result run(const std::vector<std::string>& argv, const RunOptions& options) {
  Result r;
  ChildPlan plan = plan_child(argv, options);
  r.report_dir = plan.report_dir;
  std::string out_path = r.report_dir + "/stdout", err_path = r.report_dir + "/stderr";
  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    exec_child(plan, options);
  }
  r.pid = pid;
  // Wait for the child with a deadline: a hang is a test failure, not a stuck run.
  int pidfd = static_cast<int>(syscall(SYS_pidfd_open, pid, 0));
  pollfd pfd{pidfd, POLLIN, 0};
  if (pidfd < 0 || poll(&pfd, 1, options.timeout_seconds * 1000) <= 0) {
    kill(pid, SIGKILL);
  }
  if (pidfd >= 0) close(pidfd);
  int status = 0;
  waitpid(pid, &status, 0);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);

  r.out = read_file(out_path);
  r.err = read_file(err_path);
  r.files = list_reports(r.report_dir);
  std::string report_path = r.report_dir + "/connleak." + std::to_string(pid) + ".json";
  if (access(report_path.c_str(), F_OK) == 0) {
    r.report_text = read_file(report_path);
    r.report = json::parse(r.report_text);
  }
  return r;
}

const json& report_of(const Result& r) {
  if (!r.report) throw std::runtime_error("no JSON report:\n" + describe(r));
  return *r.report;
}

std::uint64_t summary(const Result& r, const char* key) {
  return report_of(r).at("summary").at(key).get<std::uint64_t>();
}

std::vector<json> with_status(const json& report, const std::string& status) {
  std::vector<json> out;
  for (const json& c : report.at("connections"))
    if (c.at("status") == status) out.push_back(c);
  return out;
}

bool names_function(const json& frames, const std::string& function) {
  for (const json& f : frames) {
    if (!f.at("function").is_string()) continue;
    // Demangled C++ names carry their parameter list: "leak(char const*)".
    std::string name = f.at("function").get<std::string>();
    if (name == function || name.rfind(function + "(", 0) == 0) return true;
  }
  return false;
}

std::string describe(const Result& r) {
  std::ostringstream s;
  s << "exit=" << r.exit_code << " signal=" << r.signal << "\n--- stderr ---\n"
    << r.err << "\n--- stdout ---\n"
    << r.out << "\n--- report ---\n"
    << (r.report ? r.report->dump(2) : std::string("<none>"));
  return s.str();
}

}  // namespace e2e

namespace e2e {

int count(const std::string& haystack, const std::string& needle) {
  int n = 0;
  for (std::size_t pos = haystack.find(needle); pos != std::string::npos;
       pos = haystack.find(needle, pos + needle.size()))
    ++n;
  return n;
}

std::optional<json> read_report(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0) return std::nullopt;
  return json::parse(read_file(path));
}

Session::Session(const std::vector<std::string>& argv, const RunOptions& options) {
  ChildPlan plan = plan_child(argv, options);
  report_dir_ = plan.report_dir;
  int in[2], out[2], err[2];
  if (pipe2(in, O_CLOEXEC) || pipe2(out, O_CLOEXEC) || pipe2(err, O_CLOEXEC))
    throw std::runtime_error("pipe failed");
  pid_ = fork();
  if (pid_ < 0) throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    dup2(in[0], 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    exec_child(plan, options);
  }
  close(in[0]);
  close(out[1]);
  close(err[1]);
  in_ = in[1];
  out_fd_ = out[0];
  err_fd_ = err[0];
}

Result run_until_err(const std::vector<std::string>& argv, const RunOptions& options,
                     const std::string& needle, int timeout_seconds) {
  Session s(argv, options);
  s.wait_err(needle, 1, timeout_seconds);
  return s.finish();
}

Session::~Session() {
  if (!finished_) {
    kill(pid_, SIGKILL);
    waitpid(pid_, nullptr, 0);
  }
  for (int fd : {in_, out_fd_, err_fd_})
    if (fd >= 0) close(fd);
}

void Session::send(const std::string& line) {
  std::string data = line + "\n";
  ssize_t n = write(in_, data.data(), data.size());
  (void)n;
}

void Session::pump(int timeout_ms) {
  pollfd fds[2] = {{out_fd_, POLLIN, 0}, {err_fd_, POLLIN, 0}};
  if (poll(fds, 2, timeout_ms) <= 0) return;
  char buf[4096];
  for (int i = 0; i < 2; ++i) {
    if (fds[i].fd < 0 || !(fds[i].revents & (POLLIN | POLLHUP))) continue;
    ssize_t n = read(fds[i].fd, buf, sizeof buf);
    if (n > 0) (i == 0 ? out_ : err_).append(buf, static_cast<std::size_t>(n));
    if (n == 0) {  // EOF: stop polling this pipe
      close(fds[i].fd);
      (i == 0 ? out_fd_ : err_fd_) = -1;
    }
  }
}

bool Session::wait_for(const std::string* stream, const std::string& needle, int times,
                       int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while (count(*stream, needle) < times) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (out_fd_ < 0 && err_fd_ < 0) return false;
    pump(100);
  }
  return true;
}

bool Session::wait_out(const std::string& needle, int times, int timeout_seconds) {
  return wait_for(&out_, needle, times, timeout_seconds);
}

bool Session::wait_err(const std::string& needle, int times, int timeout_seconds) {
  return wait_for(&err_, needle, times, timeout_seconds);
}

bool Session::command(const std::string& command, int timeout_seconds) {
  std::string ok = "ok " + command + (command.find(' ') == std::string::npos ? " 0" : "");
  int before = count(out_, ok + "\n");
  send(command);
  return wait_out(ok + "\n", before + 1, timeout_seconds);
}

Result Session::finish(int timeout_seconds) {
  close(in_);
  in_ = -1;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  while ((out_fd_ >= 0 || err_fd_ >= 0) && std::chrono::steady_clock::now() < deadline) pump(100);
  if (out_fd_ >= 0 || err_fd_ >= 0) kill(pid_, SIGKILL);
  Result r;
  r.pid = pid_;
  int status = 0;
  waitpid(pid_, &status, 0);
  finished_ = true;
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) r.signal = WTERMSIG(status);
  r.out = out_;
  r.err = err_;
  r.report_dir = report_dir_;
  r.files = list_reports(report_dir_);
  std::string path = report_dir_ + "/connleak." + std::to_string(pid_) + ".json";
  if (auto rep = read_report(path)) {
    r.report_text = read_file(path);
    r.report = rep;
  }
  return r;
}

std::string script(const std::string& name) {
  return std::string(CONNLEAK_E2E_PYTHON_DIR) + "/" + name;
}

int line_of(const std::string& file, const std::string& marker) {
  std::ifstream in(file);
  std::string line;
  for (int n = 1; std::getline(in, line); ++n)
    if (line.find(marker) != std::string::npos) return n;
  return -1;
}

bool python_names(const json& frames, const std::string& function, const std::string& file,
                  int line) {
  for (const json& f : frames) {
    if (f.at("function") == function && f.at("file") == file && f.at("line") == line) return true;
  }
  return false;
}

}  // namespace e2e
