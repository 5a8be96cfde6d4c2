#include "tests/e2e/harness.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <dirent.h>
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

std::map<std::string, std::string> parse_env_file(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw std::runtime_error("no server env file at " + path + " (is the pg fixture running?)");
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

const std::map<std::string, std::string>& pg_env() {
  // CONNLEAK_PG_ENV_FILE lets a developer point the suite at a server started by hand.
  static const auto vars = parse_env_file(getenv("CONNLEAK_PG_ENV_FILE") ? getenv("CONNLEAK_PG_ENV_FILE")
                                                                          : CONNLEAK_PG_ENV_FILE);
  return vars;
}

std::string pg(const std::string& key) {
  auto it = pg_env().find("CONNLEAK_TEST_PG_" + key);
  if (it == pg_env().end()) throw std::runtime_error("server env lacks " + key);
  return it->second;
}

std::string bin(const std::string& name) { return std::string(CONNLEAK_E2E_BIN_DIR) + "/" + name; }

Result run(const std::vector<std::string>& argv, const RunOptions& options) {
  Result r;
  char dir_template[] = "/tmp/connleak-e2e-XXXXXX";
  if (!mkdtemp(dir_template)) throw std::runtime_error("mkdtemp failed");
  r.report_dir = dir_template;
  std::string out_path = r.report_dir + "/stdout", err_path = r.report_dir + "/stderr";

  // Everything that can throw happens before fork: an exception in the child
  // would unwind into a second copy of the test runner.
  const auto& server = pg_env();
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  std::string opts = "report_dir=" + r.report_dir;
  if (!options.options.empty()) opts += ":" + options.options;

  pid_t pid = fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    for (const auto& [k, v] : server) setenv(k.c_str(), v.c_str(), 1);
    if (options.preload) {
      setenv("LD_PRELOAD", CONNLEAK_SHIM_PATH, 1);
      setenv("CONNLEAK_OPTIONS", opts.c_str(), 1);
    } else {
      unsetenv("LD_PRELOAD");
    }
    for (const auto& [k, v] : options.env) setenv(k.c_str(), v.c_str(), 1);
    int in = open("/dev/null", O_RDONLY);
    int out = open(out_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    int err = open(err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execvp(args[0], args.data());
    _exit(127);
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
  if (DIR* d = opendir(r.report_dir.c_str())) {
    while (dirent* e = readdir(d)) {
      std::string n = e->d_name;
      if (n != "." && n != ".." && n != "stdout" && n != "stderr") r.files.push_back(n);
    }
    closedir(d);
  }
  std::string report_path = r.report_dir + "/connleak." + std::to_string(pid) + ".json";
  if (access(report_path.c_str(), F_OK) == 0) {
    r.report_text = read_file(report_path);
    r.report = json::parse(r.report_text);
  }
  return r;
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
    << r.err << "\n--- stdout ---\n" << r.out << "\n--- report ---\n"
    << (r.report ? r.report->dump(2) : std::string("<none>"));
  return s.str();
}

}  // namespace e2e
