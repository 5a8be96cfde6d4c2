// Suppressions parser and matcher. Input: the suppressions file up to the
// first NUL, then NUL-separated names (functions, files, modules) to match.
// Checks: an error is one printable line naming the origin; every accepted
// pattern matches exactly what a plain dynamic-programming glob says it
// should; applying suppressions to a report only ever removes connections
// and lowers counters, one hit per removed connection.
#include <string>
#include <vector>

#include "collector/policy/suppressions.h"
#include "tests/fuzz/fuzz_input.h"

using namespace connleak;

namespace {

// LSan's semantics spelled out the slow, obvious way: '^'/'$' anchor,
// otherwise a match anywhere; '*' is any run; an empty text never matches.
bool reference_match(std::string pattern, const std::string& text) {
  if (text.empty()) return false;
  const bool start = !pattern.empty() && pattern.front() == '^';
  if (start) pattern.erase(0, 1);
  const bool end = !pattern.empty() && pattern.back() == '$';
  if (end) pattern.pop_back();
  if (!start) pattern.insert(0, 1, '*');
  if (!end) pattern += '*';
  const std::size_t n = pattern.size(), m = text.size();
  // ok[i][j]: pattern[i..] matches text[j..]
  std::vector<std::vector<char>> ok(n + 1, std::vector<char>(m + 1, 0));
  ok[n][m] = 1;
  for (std::size_t i = n; i-- > 0;) {
    for (std::size_t j = m + 1; j-- > 0;) {
      if (pattern[i] == '*')
        ok[i][j] = ok[i + 1][j] || (j < m && ok[i][j + 1]);
      else
        ok[i][j] = j < m && pattern[i] == text[j] && ok[i + 1][j + 1];
    }
  }
  return ok[0][0];
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string whole(reinterpret_cast<const char*>(data), size);
  const std::size_t nul = whole.find('\0');
  const std::string file = whole.substr(0, nul);
  std::vector<std::string> names;
  if (nul != std::string::npos) {
    for (std::size_t i = nul + 1; names.size() < 16;) {
      const std::size_t next = whole.find('\0', i);
      names.push_back(whole.substr(i, next == std::string::npos ? std::string::npos : next - i));
      if (next == std::string::npos) break;
      i = next + 1;
    }
  }

  std::string error;
  std::optional<Suppressions> sup = Suppressions::parse(file, "fuzz.supp", &error);
  if (!sup) {
    FUZZ_CHECK(error.rfind("fuzz.supp:", 0) == 0, error);
    FUZZ_CHECK(!fuzz::has_control(error), error);
    FUZZ_CHECK(error.size() <= 1000, error);  // 120 quoted bytes, each up to 4 ("\\x1b")
    return 0;
  }
  for (const Suppression& s : sup->entries()) {
    FUZZ_CHECK(s.pattern.find_first_not_of("*^$") != std::string::npos, s.pattern);
    // What the "Suppressions used:" table prints must not drive a terminal.
    FUZZ_CHECK(!fuzz::has_control(s.pattern), s.pattern);
    for (const std::string& name : names) {
      if (s.pattern.size() * name.size() > 200000) continue;  // the reference is quadratic
      FUZZ_CHECK(template_match(s.pattern, name) == reference_match(s.pattern, name),
                 s.pattern + "\n  against: " + name);
    }
  }

  // One connection per name, each acquired from a frame naming it.
  Report report;
  for (std::size_t i = 0; i < names.size(); ++i) {
    Connection c;
    c.id = i + 1;
    c.status = i % 3 == 0   ? ConnStatus::kLeaked
               : i % 3 == 1 ? ConnStatus::kOpen
                            : ConnStatus::kClosed;
    Frame f;
    if (i % 3 == 0) f.function = names[i];
    if (i % 3 == 1) f.file = names[i];
    if (i % 3 == 2) f.module = names[i];
    c.acquired.native.push_back(f);
    if (i % 2) c.alerts.push_back({AlertKind::kDoubleClose, 1});
    report.connections.push_back(c);
    report.summary.opened++;
    report.summary.leaked += c.status == ConnStatus::kLeaked;
    report.summary.open += c.status != ConnStatus::kClosed;
    report.summary.flagged += !c.alerts.empty();
    report.summary.double_closes += !c.alerts.empty();
  }
  const Summary before = report.summary;
  const std::size_t count = report.connections.size();
  const std::size_t removed = apply_suppressions(report, *sup);
  FUZZ_CHECK(report.connections.size() + removed == count, file);
  std::uint64_t hits = 0;
  for (const Suppression& s : sup->entries()) hits += s.hits;
  FUZZ_CHECK(hits == removed, file);
  FUZZ_CHECK(report.summary.leaked <= before.leaked && report.summary.open <= before.open &&
                 report.summary.flagged <= before.flagged,
             file);
  for (const Connection& c : report.connections) FUZZ_CHECK(!sup->match(c.acquired), file);
  const std::string table = suppressions_used_table(*sup);
  FUZZ_CHECK(!fuzz::has_control(table, "\n"), table);
  return 0;
}
