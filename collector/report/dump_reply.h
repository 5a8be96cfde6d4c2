#pragma once
// The control socket's answer to "dump v2\n" (`connleak dump PID`): one line
// saying where the process left the dump's JSON file, then the report itself.
//   file "<path>"\n{...report...}
//   no-file "<why>"\n{...report...}
// The quoted text is a JSON string, so a path with a newline or a quote stays
// on its line. A plain "dump\n" (an older client) gets the report alone; an
// older shim answers "dump v2\n" with the report alone, which starts with '{'.
#include <optional>
#include <string>

namespace connleak {

std::string dump_file_line(const std::string& file, const std::string& no_file);

struct DumpReply {
  std::optional<std::string> file;     // the path the process wrote
  std::optional<std::string> no_file;  // why it wrote none
  std::string report;                  // the JSON report, as sent
};

// Splits a reply; a reply without the line (an older shim) has neither
// `file` nor `no_file`. A malformed line leaves the whole reply as `report`
// (the report parser then says it is not a report).
DumpReply split_dump_reply(const std::string& reply);

}  // namespace connleak
