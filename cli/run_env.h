#pragma once
// The environment `connleak run` gives its command: the shim in LD_PRELOAD and
// the run's flags in CONNLEAK_OPTIONS, both inherited by every process the
// command forks or execs.
#include <optional>
#include <string>
#include <vector>

namespace connleak::cli {

// libconnleak.so relative to this program's real path: build/bin -> build/lib,
// <prefix>/bin -> <prefix>/lib. Throws Failure naming where it looked.
std::string find_shim();
// Same, relative to a given program path (testable without /proc/self/exe).
std::string shim_next_to(const std::string& program_path);

// The directory of connleak's sitecustomize (Python pool hooks) relative to a
// program path: <dir>/bin/connleak -> <dir>/share/connleak/python; empty when
// it is not there (then Python programs are tracked without pool checkouts).
std::string python_hooks_next_to(const std::string& program_path);
std::string find_python_hooks();

// PYTHONPATH with `dir` first and the existing entries kept; `dir` is not repeated.
std::string python_path_value(const char* existing, const std::string& dir);

// LD_PRELOAD with the shim first and the existing entries kept (separated by
// spaces or colons, as ld.so accepts); an existing copy of the shim is not repeated.
std::string preload_value(const char* existing, const std::string& shim);

// key=value pairs appended to CONNLEAK_OPTIONS; the shim lets a later
// occurrence of a key override an earlier one, which is how flags win.
struct ShimFlags {
  std::optional<std::string> threshold;
  std::optional<std::string> txn_threshold;
  std::optional<std::string> report_dir;
  std::optional<std::string> suppressions;
  std::optional<std::string> metrics_file;
};
// "print_report=0:dump_signal=12:control=1" first (each process writes its
// JSON; the run prints one merged summary; dumps need the shim's thread, which
// is off by default elsewhere; the user's own options can turn each back),
// then the existing options, then the flags. Throws Failure for a value that cannot be
// quoted (it holds ':' and both kinds of quotes).
std::string options_value(const char* existing, const ShimFlags& flags);
// A value as the option parser reads it: bare, or quoted when it holds ':'.
std::string quote_option_value(const std::string& value);

// `environ` with LD_PRELOAD and CONNLEAK_OPTIONS replaced, and PYTHONPATH
// when `python_path` is not empty.
std::vector<std::string> child_environment(const std::string& preload, const std::string& options,
                                           const std::string& python_path = "");

}  // namespace connleak::cli
