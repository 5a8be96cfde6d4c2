#pragma once
// What every subcommand shares: exit codes, one-line messages, file reading,
// and the pass/fail decision.
#include <stdexcept>
#include <string>

#include "collector/report/report_model.h"

namespace connleak::cli {

// Exit codes fixed by the contract (shared/spec/contract.md).
inline constexpr int kExitUsage = 2;         // bad flag, unreadable input, tool failure
inline constexpr int kExitLeaks = 23;        // the program succeeded but leaked
inline constexpr int kExitCannotExec = 126;  // shell convention: found but not runnable
inline constexpr int kExitNotFound = 127;    // shell convention: command not found

// A failure the user must see as one line ("connleak: <message>") and an exit code.
struct Failure : std::runtime_error {
  int code;
  explicit Failure(const std::string& message, int exit_code = kExitUsage)
      : std::runtime_error(message), code(exit_code) {}
};

// Text to stderr in one write(2): the tool's output and the shim's, from the
// processes of a run, share stderr and must not interleave mid-line.
void write_stderr(const std::string& text);
void print_error(const std::string& message);    // "connleak: <message>" on stderr
void print_warning(const std::string& message);  // "connleak: warning: <message>" on stderr
void print_note(const std::string& message);     // "connleak: <message>" on stderr

// Whole file as bytes; false with "cannot read PATH: reason" in *error.
bool read_file(const std::string& path, std::string* content, std::string* error,
               std::size_t max_bytes = std::size_t{1} << 40);
// `connleak report` reads a whole report into memory: 10,000 leaks from 100
// sites make ~5 MB, so a file past this is not a report worth 40 s and GBs.
inline constexpr std::size_t kMaxReportBytes = std::size_t{64} << 20;
// Writes to PATH, or to stdout when PATH is empty or "-"; throws Failure.
void write_output(const std::string& path, const std::string& content);

enum class FailOn { leaked, flagged, never };
FailOn parse_fail_on(const std::string& text);  // the CLI validates the set first
// leaked: any connection with status "leaked"; flagged: that, or any alert.
bool has_failures(const Report& report, FailOn fail_on);

}  // namespace connleak::cli
