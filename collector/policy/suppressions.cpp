#include "collector/policy/suppressions.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "collector/util/text_util.h"

namespace connleak {

namespace {

// Real suppressions files are a few kilobytes; anything near this is not one.
constexpr std::size_t kMaxFileBytes = 1u << 20;

// Error lines echo file content to a terminal: no raw control bytes, bounded.
std::string printable(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < 120; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      char esc[8];
      std::snprintf(esc, sizeof esc, "\\x%02x", c);
      out += esc;
    } else {
      out += s[i];
    }
  }
  if (s.size() > 120) out += "...";
  return out;
}

// Glob match of the whole text against a pattern whose only metacharacter is
// '*'. Iterative with one backtrack point (the last '*'), so it is linear in
// practice and never recurses: LSan's own matcher takes the first occurrence of
// each literal run and wrongly rejects "a*b$" against "ab_b".
bool glob_match(std::string_view p, std::string_view t) noexcept {
  std::size_t pi = 0, ti = 0, star = std::string_view::npos, resume = 0;
  while (ti < t.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star = pi++;
      resume = ti;
    } else if (pi < p.size() && p[pi] == t[ti]) {
      ++pi;
      ++ti;
    } else if (star != std::string_view::npos) {
      pi = star + 1;
      ti = ++resume;
    } else {
      return false;
    }
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

bool has_control(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) == 0x7f;
  });
}

bool frame_matches(std::string_view pattern, const Frame& f) noexcept {
  return (f.function && template_match(pattern, *f.function)) ||
         (f.file && template_match(pattern, *f.file)) ||
         (f.module && template_match(pattern, *f.module));
}

bool frames_match(std::string_view pattern, const std::vector<Frame>& frames) noexcept {
  return std::any_of(frames.begin(), frames.end(),
                     [&](const Frame& f) { return frame_matches(pattern, f); });
}

void decrement(std::uint64_t& counter) {
  if (counter > 0) --counter;
}

}  // namespace

bool template_match(std::string_view pattern, std::string_view text) noexcept {
  if (text.empty()) return false;  // an unknown name is never suppressed (LSan does the same)
  bool anchored_start = !pattern.empty() && pattern.front() == '^';
  if (anchored_start) pattern.remove_prefix(1);
  bool anchored_end = !pattern.empty() && pattern.back() == '$';
  if (anchored_end) pattern.remove_suffix(1);
  // "^x$" is a whole-text glob; each missing anchor is an implicit '*'.
  std::string glob;
  try {
    glob.reserve(pattern.size() + 2);
    if (!anchored_start) glob += '*';
    glob += pattern;
    if (!anchored_end) glob += '*';
  } catch (...) {
    return false;
  }
  return glob_match(glob, text);
}

std::optional<Suppressions> Suppressions::parse(std::string_view text, const std::string& origin,
                                                std::string* error) noexcept {
  try {
    Suppressions result;
    std::size_t line_no = 0;
    while (!text.empty()) {
      std::size_t nl = text.find('\n');
      std::string_view raw = text.substr(0, nl);
      text = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
      ++line_no;
      std::string_view line = trim(raw);
      if (line.empty() || line.front() == '#') continue;
      std::string where = origin + ":" + std::to_string(line_no);
      std::size_t colon = line.find(':');
      if (colon == std::string_view::npos) {
        *error = where + ": expected 'leak:<pattern>', got '" + printable(line) + "'";
        return std::nullopt;
      }
      std::string_view type = trim(line.substr(0, colon));
      std::string_view pattern = trim(line.substr(colon + 1));
      if (type != "leak") {
        *error = where + ": unknown suppression type '" + printable(type) +
                 "' (only 'leak:' is supported)";
        return std::nullopt;
      }
      // An empty pattern (or only anchors/wildcards) would silently suppress everything.
      if (pattern.find_first_not_of("*^$") == std::string_view::npos) {
        *error = where + ": empty pattern in '" + printable(line) + "'";
        return std::nullopt;
      }
      // No function, file or module name holds one, and the "Suppressions used:"
      // table would print it raw (found by tests/fuzz/fuzz_suppressions.cpp).
      if (has_control(pattern)) {
        *error = where + ": control character in pattern '" + printable(pattern) + "'";
        return std::nullopt;
      }
      result.entries_.push_back({std::string(pattern), where, 0});
    }
    return result;
  } catch (...) {
    *error = origin + ": out of memory while reading suppressions";
    return std::nullopt;
  }
}

std::optional<Suppressions> Suppressions::load(const std::string& path,
                                               std::string* error) noexcept {
  try {
    const std::string name = "suppressions file " + printable(path);
    // O_NONBLOCK: opening a FIFO must not wait for a writer (it hung the host
    // at exit); what it is gets checked on the open descriptor, before any read.
    int fd = open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
      *error = "cannot read " + name + ": " + std::strerror(errno);
      return std::nullopt;
    }
    struct stat st {};
    const char* refused = nullptr;
    if (fstat(fd, &st) != 0)
      refused = "cannot be examined";
    else if (S_ISDIR(st.st_mode))
      refused = "is a directory, not a file";
    else if (!S_ISREG(st.st_mode))
      refused = "is not a regular file (a FIFO, socket or device)";
    else if (static_cast<std::size_t>(st.st_size) > kMaxFileBytes)
      refused = "is larger than 1 MiB; not a suppressions file";
    if (refused) {
      close(fd);
      *error = "cannot read " + name + ": it " + refused;
      return std::nullopt;
    }
    std::string text;
    char buf[8192];
    for (;;) {
      ssize_t n = read(fd, buf, sizeof buf);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) {
        int err = errno;
        close(fd);
        *error = "cannot read " + name + ": " + std::strerror(err);
        return std::nullopt;
      }
      if (n == 0) break;
      text.append(buf, static_cast<std::size_t>(n));
      if (text.size() > kMaxFileBytes) {  // grew while we read it
        close(fd);
        *error = "cannot read " + name + ": it is larger than 1 MiB; not a suppressions file";
        return std::nullopt;
      }
    }
    close(fd);
    if (std::size_t nul = text.find('\0'); nul != std::string::npos) {
      *error = name + " is not a text file (a NUL byte on line " +
               std::to_string(
                   1 + std::count(text.begin(), text.begin() + static_cast<long>(nul), '\n')) +
               ")";
      return std::nullopt;
    }
    return parse(text, path, error);
  } catch (...) {
    *error = "cannot read suppressions file " + path;
    return std::nullopt;
  }
}

std::optional<std::size_t> Suppressions::match(const Stacks& stacks) const noexcept {
  for (std::size_t i = 0; i < entries_.size(); ++i) {
    const std::string& p = entries_[i].pattern;
    if (frames_match(p, stacks.native) || (stacks.script && frames_match(p, *stacks.script)))
      return i;
  }
  return std::nullopt;
}

std::size_t apply_suppressions(Report& report, Suppressions& suppressions) {
  if (suppressions.empty()) return 0;
  std::size_t removed = 0;
  Summary& s = report.summary;
  std::vector<Connection> kept;
  kept.reserve(report.connections.size());
  for (Connection& c : report.connections) {
    std::optional<std::size_t> hit = suppressions.match(c.acquired);
    if (!hit) {
      kept.push_back(std::move(c));
      continue;
    }
    ++suppressions.entries()[*hit].hits;
    ++removed;
    if (c.status == ConnStatus::kLeaked) {
      decrement(s.leaked);
      decrement(s.open);
    } else if (c.status == ConnStatus::kOpen) {
      decrement(s.open);
    }
    if (!c.alerts.empty()) decrement(s.flagged);
    if (std::any_of(c.alerts.begin(), c.alerts.end(),
                    [](const AlertInfo& a) { return a.kind == AlertKind::kDoubleClose; }))
      decrement(s.double_closes);
  }
  report.connections = std::move(kept);
  // Pool checkouts (extension) match on their checkout stack.
  std::vector<Checkout> kept_checkouts;
  kept_checkouts.reserve(report.checkouts.size());
  for (Checkout& c : report.checkouts) {
    std::optional<std::size_t> hit = suppressions.match(c.acquired);
    if (!hit) {
      kept_checkouts.push_back(std::move(c));
      continue;
    }
    ++suppressions.entries()[*hit].hits;
    ++removed;
    if (c.status == CheckoutStatus::kLeaked || c.status == CheckoutStatus::kReclaimed)
      decrement(s.checkouts.leaked);
    if (c.status == CheckoutStatus::kLeaked || c.status == CheckoutStatus::kOpen)
      decrement(s.checkouts.open);
  }
  report.checkouts = std::move(kept_checkouts);
  return removed;
}

std::string suppressions_used_table(const Suppressions& suppressions) {
  std::string rows;
  for (const Suppression& sup : suppressions.entries()) {
    if (sup.hits == 0) continue;
    char count[32];
    std::snprintf(count, sizeof count, "%7llu ", static_cast<unsigned long long>(sup.hits));
    rows += count;
    rows += "leak:" + sup.pattern + '\n';
  }
  if (rows.empty()) return "";
  const std::string rule(53, '-');
  return rule + "\nSuppressions used:\n  count template\n" + rows + rule + '\n';
}

void absorb_suppression_uses(Suppressions& suppressions, const Report& report) {
  for (const SuppressionUse& use : report.suppressions_used) {
    auto& entries = suppressions.entries();
    auto same = std::find_if(entries.begin(), entries.end(),
                             [&](const Suppression& s) { return s.pattern == use.pattern; });
    if (same != entries.end())
      same->hits += use.hits;
    else
      entries.push_back(Suppression{use.pattern, use.origin, use.hits});
  }
}

void apply_all_suppressions(Report& merged, std::optional<Suppressions>& suppressions) {
  if (suppressions) apply_suppressions(merged, *suppressions);
  // What the processes suppressed themselves (shim option suppressions=) counts too.
  if (!merged.suppressions_used.empty()) {
    if (!suppressions) suppressions.emplace();
    absorb_suppression_uses(*suppressions, merged);
  }
}

}  // namespace connleak
