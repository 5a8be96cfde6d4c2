#include "cli/run_env.h"

#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <sstream>

#include "cli/common.h"

extern char** environ;

namespace connleak::cli {

namespace {

std::string parent_dir(const std::string& path) {
  std::size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

bool readable(const std::string& path) {
  return access(path.c_str(), R_OK) == 0;
}

}  // namespace

std::string shim_next_to(const std::string& program_path) {
  // <dir>/bin/connleak -> <dir>/lib/libconnleak.so
  return parent_dir(parent_dir(program_path)) + "/lib/libconnleak.so";
}

std::string find_shim() {
  // The real path, so a symlink such as /usr/local/bin/connleak -> /opt/connleak/bin/connleak
  // still finds /opt/connleak/lib.
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0)
    throw Failure(std::string("cannot locate this program (/proc/self/exe): ") +
                  std::strerror(errno));
  exe[n] = '\0';
  std::string shim = shim_next_to(exe);
  if (!readable(shim))
    throw Failure("cannot find the preload library: " + shim + " is missing or unreadable");
  // ld.so splits LD_PRELOAD on spaces and colons; such a path cannot be preloaded at all.
  if (shim.find_first_of(" :\t") != std::string::npos)
    throw Failure("cannot preload " + shim + ": LD_PRELOAD cannot hold a path with spaces or ':'");
  return shim;
}

std::string python_hooks_next_to(const std::string& program_path) {
  std::string dir = parent_dir(parent_dir(program_path)) + "/share/connleak/python";
  return readable(dir + "/sitecustomize.py") ? dir : std::string();
}

std::string find_python_hooks() {
  char exe[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (n <= 0) return {};
  exe[n] = '\0';
  return python_hooks_next_to(exe);
}

std::string python_path_value(const char* existing, const std::string& dir) {
  std::string value = dir;
  if (!existing || !*existing) return value;
  // Python splits on ':' only; empty entries (the current directory) are kept as they were.
  std::string text = existing;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find(':', start);
    std::string entry =
        text.substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (entry != dir) value += ":" + entry;
    if (end == std::string::npos) break;
    start = end + 1;
  }
  return value;
}

std::string preload_value(const char* existing, const std::string& shim) {
  std::string value = shim;
  if (!existing) return value;
  std::string entry;
  // Keep the user's entries in order; only drop further copies of the shim.
  std::string text = existing;
  for (char& c : text)
    if (c == ':') c = ' ';
  std::istringstream words(text);
  while (words >> entry)
    if (entry != shim) value += " " + entry;
  return value;
}

std::string quote_option_value(const std::string& value) {
  // The parser trims values and treats a leading quote as quoting.
  bool plain = value.find(':') == std::string::npos && value.find_first_of("\"'") != 0 &&
               (value.empty() || (!std::isspace(static_cast<unsigned char>(value.front())) &&
                                  !std::isspace(static_cast<unsigned char>(value.back()))));
  if (plain) return value;
  if (value.find('"') == std::string::npos) return "\"" + value + "\"";
  if (value.find('\'') == std::string::npos) return "'" + value + "'";
  throw Failure("cannot pass '" + value +
                "' in CONNLEAK_OPTIONS: it holds ':' and both kinds of quotes");
}

std::string options_value(const char* existing, const ShimFlags& flags) {
  // Each process still writes its JSON; only `run` prints, once, for the tree.
  // Dumps (signal and `connleak dump PID`) are on under `run`: they need the
  // shim's thread, which a plain preloaded process does not start by default.
  // Before the user's options, so an exported control=0 still wins.
  std::string value = "print_report=0:dump_signal=12:control=1";
  if (existing && *existing) value += std::string(":") + existing;
  auto add = [&](const char* key, const std::optional<std::string>& v) {
    if (v) value += std::string(":") + key + "=" + quote_option_value(*v);
  };
  add("threshold", flags.threshold);
  add("txn_threshold", flags.txn_threshold);
  add("report_dir", flags.report_dir);
  add("suppressions", flags.suppressions);
  add("metrics_file", flags.metrics_file);
  return value;
}

std::vector<std::string> child_environment(const std::string& preload, const std::string& options,
                                           const std::string& python_path) {
  std::vector<std::string> env;
  for (char** e = environ; *e; ++e) {
    std::string entry = *e;
    if (entry.rfind("LD_PRELOAD=", 0) == 0 || entry.rfind("CONNLEAK_OPTIONS=", 0) == 0) continue;
    if (!python_path.empty() && entry.rfind("PYTHONPATH=", 0) == 0) continue;
    env.push_back(std::move(entry));
  }
  env.push_back("LD_PRELOAD=" + preload);
  env.push_back("CONNLEAK_OPTIONS=" + options);
  if (!python_path.empty()) env.push_back("PYTHONPATH=" + python_path);
  return env;
}

}  // namespace connleak::cli
