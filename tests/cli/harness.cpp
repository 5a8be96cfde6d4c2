#include "tests/cli/harness.h"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace cli_test {

namespace {

using Clock = std::chrono::steady_clock;

test_harness::Env child_env(const Options& options) {
  test_harness::Env env = test_harness::current_environment();
  // Tests decide the shim's environment themselves.
  env.erase("LD_PRELOAD");
  env.erase("CONNLEAK_OPTIONS");
  if (options.pg)
    for (const auto& [k, v] : pg_env()) env[k] = v;
  for (const std::string& k : options.unset) env.erase(k);
  for (const auto& [k, v] : options.env) env[k] = v;
  return env;
}

}  // namespace

Process::Process(const std::vector<std::string>& argv, const Options& options)
    : child_(argv, child_env(options), options.cwd) {}

Process::~Process() = default;

std::string Process::read_line(int timeout_seconds) {
  auto deadline = Clock::now() + std::chrono::seconds(timeout_seconds);
  for (;;) {
    const std::string& out = child_.out();
    auto nl = out.find('\n', line_start_);
    if (nl != std::string::npos) {
      std::string line = out.substr(line_start_, nl - line_start_);
      line_start_ = nl + 1;
      return line;
    }
    if (Clock::now() >= deadline)
      throw std::runtime_error("no line on stdout within the timeout; stderr so far: " +
                               child_.err());
    child_.pump(100);
    if (!child_.out_open() && out.find('\n', line_start_) == std::string::npos)
      throw std::runtime_error("stdout closed before a full line; stderr: " + child_.err());
  }
}

void Process::write_stdin(const std::string& data) {
  child_.write_stdin(data);
}

void Process::close_stdin() {
  child_.close_stdin();
}

Result Process::wait(int timeout_seconds) {
  // Both pipes reach EOF when the process and every child holding them exit.
  test_harness::Exit exit = child_.wait(timeout_seconds);
  Result r;
  r.exit_code = exit.exit_code;
  r.signal = exit.signal;
  r.out = child_.out().substr(line_start_);  // what read_line has not taken
  r.err = child_.err();
  if (exit.timed_out) r.err += "\n[harness: killed after " + std::to_string(timeout_seconds) + "s]";
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
  static const auto vars = test_harness::parse_env_file(std::getenv("CONNLEAK_PG_ENV_FILE")
                                                            ? std::getenv("CONNLEAK_PG_ENV_FILE")
                                                            : CONNLEAK_PG_ENV_FILE,
                                                        "pg");
  return vars;
}

std::string describe(const Result& r) {
  std::ostringstream s;
  s << "exit=" << r.exit_code << " signal=" << r.signal << "\n--- stderr ---\n"
    << r.err << "\n--- stdout ---\n"
    << r.out;
  return s.str();
}

TempDir::TempDir() : path_(test_harness::make_temp_dir("connleak-cli-test-")) {}

TempDir::~TempDir() {
  std::error_code ignored;
  std::filesystem::remove_all(path_, ignored);
}

}  // namespace cli_test
