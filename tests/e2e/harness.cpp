#include "tests/e2e/harness.h"

#include <dirent.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <stdexcept>

namespace e2e {

using test_harness::read_file;

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
  static const auto vars = test_harness::parse_env_file(
      getenv("CONNLEAK_PG_ENV_FILE") ? getenv("CONNLEAK_PG_ENV_FILE") : CONNLEAK_PG_ENV_FILE, "pg");
  return vars;
}

const std::map<std::string, std::string>& mysql_env() {
  // CONNLEAK_MYSQL_ENV_FILE: same override, for a MariaDB started by hand.
  static const auto vars = test_harness::parse_env_file(getenv("CONNLEAK_MYSQL_ENV_FILE")
                                                            ? getenv("CONNLEAK_MYSQL_ENV_FILE")
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

namespace {

// The environment of a program under the shim: the runner's, the servers'
// variables, the preload and its options, then the test's own variables.
test_harness::Env child_env(const std::string& report_dir, const RunOptions& options) {
  test_harness::Env env = test_harness::current_environment();
  for (const auto& [k, v] : pg_env()) env[k] = v;
  // MariaDB's variables when its fixture runs; tests that need them ask mysql(),
  // which fails loudly when it does not.
  try {
    for (const auto& [k, v] : mysql_env()) env[k] = v;
  } catch (const std::runtime_error&) {
  }
  if (options.preload) {
    env["LD_PRELOAD"] = CONNLEAK_SHIM_PATH;
    env["CONNLEAK_OPTIONS"] =
        "report_dir=" + report_dir + (options.options.empty() ? "" : ":" + options.options);
  } else {
    env.erase("LD_PRELOAD");
  }
  for (const auto& [k, v] : options.env) env[k] = v;
  return env;
}

// Exit status, output and whatever the run left in its report directory.
Result collect(test_harness::Child& child, const test_harness::Exit& exit,
               const std::string& report_dir) {
  Result r;
  r.pid = child.pid();
  r.exit_code = exit.exit_code;
  r.signal = exit.signal;
  r.out = child.out();
  r.err = child.err();
  r.report_dir = report_dir;
  r.files = list_reports(report_dir);
  std::string path = report_dir + "/connleak." + std::to_string(r.pid) + ".json";
  if (access(path.c_str(), F_OK) == 0) {
    r.report_text = read_file(path);
    r.report = json::parse(r.report_text);
  }
  return r;
}

}  // namespace

Result run(const std::vector<std::string>& argv, const RunOptions& options) {
  std::string report_dir = test_harness::make_temp_dir("connleak-e2e-");
  test_harness::Child child(argv, child_env(report_dir, options));
  // Until the program itself exits (stdin is closed at once): what a child it
  // left behind does afterwards is not this run's.
  test_harness::Exit exit = child.wait(options.timeout_seconds, /*until_exit=*/true);
  return collect(child, exit, report_dir);
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

json the_one_leak(const Result& r, const std::string& library) {
  EXPECT_EQ(summary(r, "opened"), 3u) << describe(r);
  EXPECT_EQ(summary(r, "closed"), 2u) << describe(r);
  EXPECT_EQ(summary(r, "leaked"), 1u) << describe(r);
  std::vector<json> leaked = with_status(report_of(r), "leaked");
  if (leaked.size() != 1u) {
    ADD_FAILURE() << leaked.size() << " leaked records, expected 1\n" << describe(r);
    return json();
  }
  EXPECT_EQ(leaked[0].at("library"), library) << leaked[0].dump(2);
  return leaked[0];
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

std::int64_t printed(const Result& r, const std::string& key) {
  std::size_t at = r.out.find(key + "=");
  if (at == std::string::npos)
    throw std::runtime_error("program did not print " + key + ":\n" + describe(r));
  return std::stoll(r.out.substr(at + key.size() + 1));
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

std::optional<json> read_report(const std::string& path) {
  if (access(path.c_str(), F_OK) != 0) return std::nullopt;
  return json::parse(read_file(path));
}

std::vector<json> reports_with_trigger(const Result& r, const std::string& trigger) {
  std::vector<json> found;
  for (const std::string& name : r.files) {
    if (name.size() < 5 || name.compare(name.size() - 5, 5, ".json") != 0) continue;
    auto doc = read_report(r.report_dir + "/" + name);
    if (doc && doc->value("trigger", "") == trigger) found.push_back(*doc);
  }
  return found;
}

Session::Session(const std::vector<std::string>& argv, const RunOptions& options)
    : report_dir_(test_harness::make_temp_dir("connleak-e2e-")),
      child_(std::make_unique<test_harness::Child>(argv, child_env(report_dir_, options))) {}

Session::~Session() = default;

Result run_until_err(const std::vector<std::string>& argv, const RunOptions& options,
                     const std::string& needle, int timeout_seconds) {
  Session s(argv, options);
  s.wait_err(needle, 1, timeout_seconds);
  return s.finish();
}

void Session::send(const std::string& line) {
  child_->write_stdin(line + "\n");
}

bool Session::wait_for(bool on_stdout, const std::string& needle, int times, int timeout_seconds) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
  const std::string& stream = on_stdout ? child_->out() : child_->err();
  while (count(stream, needle) < times) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    if (!child_->pump(100)) return count(stream, needle) >= times;
  }
  return true;
}

bool Session::wait_out(const std::string& needle, int times, int timeout_seconds) {
  return wait_for(true, needle, times, timeout_seconds);
}

bool Session::wait_err(const std::string& needle, int times, int timeout_seconds) {
  return wait_for(false, needle, times, timeout_seconds);
}

bool Session::command(const std::string& command, int timeout_seconds) {
  std::string ok = "ok " + command + (command.find(' ') == std::string::npos ? " 0" : "");
  int before = count(out(), ok + "\n");
  send(command);
  return wait_out(ok + "\n", before + 1, timeout_seconds);
}

Result Session::finish(int timeout_seconds) {
  test_harness::Exit exit = child_->wait(timeout_seconds);
  return collect(*child_, exit, report_dir_);
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
