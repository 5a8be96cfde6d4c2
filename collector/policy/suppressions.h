#pragma once
// LeakSanitizer-style suppressions: a file of `leak:<pattern>` lines, `#`
// comments and blank lines. A pattern suppresses a connection when it matches
// the function, file or module of any frame (native or Python) of the stack
// that acquired it. Matching follows LSan's TemplateMatch, so users' habits
// carry over: `*` matches any run of characters, and a pattern matches
// anywhere in the text unless anchored with a leading `^` or a trailing `$`
// (`leak:libpq.so` matches the module /usr/lib/x86_64-linux-gnu/libpq.so.5).
//
// Shared by the CLI (`--suppressions FILE`) and, later, the shim
// (`suppressions=` option): parsing and matching never throw and matching is
// const, so the shim can call it from hooks on many threads; counting hits is
// the caller's business (apply_suppressions does it for whole reports).
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

struct Suppression {
  std::string pattern;  // without the "leak:" prefix
  std::string origin;   // "file:line", for messages
  std::uint64_t hits = 0;
};

// LSan template match: `*` wildcard, optional `^` / `$` anchors, otherwise a
// match anywhere in `text`.
bool template_match(std::string_view pattern, std::string_view text) noexcept;

class Suppressions {
 public:
  // Parses suppression text. `origin` names the source in errors ("connleak.supp").
  // On a malformed line returns nullopt and sets *error to "origin:line: what is wrong".
  static std::optional<Suppressions> parse(std::string_view text, const std::string& origin,
                                           std::string* error) noexcept;
  // Reads and parses a file; an unreadable file is an error naming it.
  static std::optional<Suppressions> load(const std::string& path, std::string* error) noexcept;

  // Index of the first suppression matching any frame of `stacks`, if any.
  std::optional<std::size_t> match(const Stacks& stacks) const noexcept;

  std::vector<Suppression>& entries() { return entries_; }
  const std::vector<Suppression>& entries() const { return entries_; }
  bool empty() const { return entries_.empty(); }

 private:
  std::vector<Suppression> entries_;
};

// Removes every connection whose acquisition stack is suppressed, counts a hit
// on the suppression that matched, and takes the removed connections out of
// the summary counters (leaked/open/flagged/double_closes) so the summary
// describes what is left. Returns how many connections were removed.
std::size_t apply_suppressions(Report& report, Suppressions& suppressions);

// Folds the hits a report's producers already applied (Report::suppressions_used,
// e.g. each process under `connleak run`) into `suppressions`, adding entries
// for patterns it does not have, so one table shows every suppression used.
void absorb_suppression_uses(Suppressions& suppressions, const Report& report);

// apply_suppressions with `suppressions` (if any), then absorb_suppression_uses:
// the one step `connleak run` and `connleak report` take on a merged report.
// Creates `suppressions` when only the processes had some.
void apply_all_suppressions(Report& merged, std::optional<Suppressions>& suppressions);

// The LSan "Suppressions used:" table (only suppressions with hits), or "" when
// nothing was suppressed. Ends with a newline.
std::string suppressions_used_table(const Suppressions& suppressions);

}  // namespace connleak
