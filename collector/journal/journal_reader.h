#pragma once
// Reads a journal (journal_format.h) from bytes, trusting nothing: the file may
// be torn (the process died mid-write), truncated, or not a journal at all.
// Whatever does not check out is skipped and counted in `notes`; only a header
// that cannot be trusted makes the whole file unreadable.
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "collector/report/report_enums.h"

namespace connleak::journal {

struct JournalModule {
  std::uint64_t load_address = 0;
  std::uint64_t low = 0, high = 0;
  std::vector<unsigned char> build_id;
  std::string path;
};

struct JournalPyFrame {
  std::string file;
  std::string function;
  int line = 0;
};

struct JournalEntry {
  bool checkout = false;
  std::uint8_t library = 0;   // connleak::Library
  std::uint8_t protocol = 0;  // 0 none, 1 postgresql, 2 mysql
  std::uint64_t record_id = 0;
  std::uint64_t handle = 0;  // checkout: its pool id
  std::uint64_t link = 0;    // checkout: the connection it lends
  std::int64_t opened_real_ns = 0;
  int thread = 0;
  int fd = -1;
  std::uint32_t stack = 0;
  std::uint32_t py_stack = 0;
  std::string target;
};

struct JournalContents {
  std::int64_t pid = 0;
  std::int64_t ppid = 0;
  std::uint64_t pidns_inode = 0;
  std::uint64_t start_ticks = 0;
  std::int64_t started_real_ns = 0;
  std::int64_t last_real_ns = 0;
  bool exit_reported = false;
  std::vector<std::string> argv;
  std::uint64_t opened = 0, closed = 0, not_journaled = 0, log_dropped = 0;
  std::vector<JournalEntry> open;  // connections and checkouts open at the end
  std::map<std::uint32_t, std::vector<std::uint64_t>> native_stacks;
  std::map<std::uint32_t, std::vector<JournalPyFrame>> python_stacks;  // script stacks
  ScriptLanguage script_language = ScriptLanguage::kPython;            // of python_stacks
  std::vector<JournalModule> modules;
  std::vector<std::string> notes;  // what was skipped and why, one line each
};

// nullopt with one line in *error when the header is not a journal's.
std::optional<JournalContents> parse_journal(const unsigned char* data, std::size_t size,
                                             std::string* error);
// Maps (read-only) and parses the file; the error names it.
std::optional<JournalContents> read_journal(const std::string& path, std::string* error);

}  // namespace connleak::journal
