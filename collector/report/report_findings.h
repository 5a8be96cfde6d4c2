#pragma once
// What CI formats (SARIF, JUnit) report: the problems in a report, grouped by
// rule and acquisition site, plus the helpers that pick the line a user has to
// fix. Text keeps its own LeakSanitizer layout (report_text); these formats
// need one record per problem site instead.
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

struct Rule {
  const char* id;     // "connleak/leaked-connection"
  const char* name;   // "LeakedConnection"
  const char* level;  // SARIF level: "error" | "warning"
  const char* short_description;
  const char* help;
};

// The rule for an alert kind ("double_close", "lifetime", ...), or for a leak
// when kind is "leak". Unknown kinds get a generic warning rule.
const Rule& rule_for(std::string_view kind);
// Every rule the renderers may use, in a fixed order (SARIF lists them).
const std::vector<Rule>& all_rules();

struct Finding {
  std::string kind;  // "leak", "checkout_leak" or the alert kind
  const Rule* rule = nullptr;
  std::vector<const Connection*> connections;  // all from the same site
  std::string site_key;
  // Pool checkouts (extension) are shown as connections of library "checkout"
  // (handle "checkout:<id>", target the pool): `connections` points in here.
  std::shared_ptr<std::vector<Connection>> owned;
};

// Leaked connections grouped by site, then connections with alerts grouped by
// (first alert kind, site); largest group first, then lowest id, like the text
// report. Open connections in a dump without alerts are not problems. A leaked
// connection that also carried an alert is reported once, as a leak.
std::vector<Finding> collect_findings(const Report& report);

// Library code rather than the user's: system prefixes (/usr/lib, /lib,
// /usr/include, ...) and Python package directories.
bool is_system_path(std::string_view path);
// The frame a user should look at: the innermost one that has a file and is
// not in library code (checked on both its file and its module). Python frames
// come first when present (the native stack of a Python host is the
// interpreter). Falls back to the innermost frame with a file; nullptr if none.
const Frame* user_frame(const Stacks& stacks);

// True for a frame in library code (its file or its module under a system path).
bool is_library_frame(const Frame& frame);
// The frame that names a site in titles: user_frame, else the innermost frame
// with a function name (a stripped binary still has symbols), else nullptr.
const Frame* title_frame(const Stacks& stacks);

// "open_report_conn (/src/app.c:42)", "cache_warmup (/src/service)" or
// "<unknown site>", for short titles.
std::string frame_title(const Frame* frame);
// The stacks of a connection's closes, labelled for a report ("closed from:",
// or "first closed from:" / "closed again from:" for a double close).
std::string format_closes(const Connection& connection, std::string_view indent = "");
// Pids of the finding's connections, sorted, unique.
std::vector<std::int64_t> finding_pids(const Finding& finding);

}  // namespace connleak
