#include "collector/policy/options.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <limits>
#include <system_error>

#include "collector/util/text_util.h"

namespace connleak {
namespace {

// Our own ASCII tests instead of <cctype>: the host may have called setlocale(), and the option
// syntax must not change with it.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (to_lower(a[i]) != to_lower(b[i])) return false;
  }
  return true;
}

// Warnings echo user input to a terminal: keep control characters out and the line short.
std::string printable(std::string_view s) {
  constexpr std::size_t kMax = 120;
  std::string out;
  for (std::size_t i = 0; i < s.size() && i < kMax; ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    out += (c < 0x20 || c == 0x7f) ? '?' : s[i];
  }
  if (s.size() > kMax) out += "...";
  return out;
}

// Strips trailing zeros so "1.500000000" reads "1.5"; %f never produces exponents, which
// parse_duration would reject.
std::string format_fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s(buf);
  if (s.find('.') != std::string::npos) {
    while (!s.empty() && s.back() == '0') s.pop_back();
    if (!s.empty() && s.back() == '.') s.pop_back();
  }
  return s;
}

// Per-type pieces used by the X-macro expansions below. Overloads rather than templates so a
// new field type fails to compile until it gets all of them. Those for Duration and for an int
// without a range are [[maybe_unused]] because no option in options.inc uses them yet.
const char* type_name(const bool*) {
  return "bool";
}
const char* type_name(const std::string*) {
  return "string";
}
[[maybe_unused]] const char* type_name(const Duration*) {
  return "duration";
}
[[maybe_unused]] const char* type_name(const std::int64_t*) {
  return "int";
}

std::string format_value(bool v) {
  return v ? "true" : "false";
}
std::string format_value(std::int64_t v) {
  return std::to_string(v);
}
// Always quoted, so an empty default is visible and a value with ':' can be pasted back.
// help=1 prints the user's own values on a terminal: control characters are spelled \xNN
// (found by tests/fuzz/fuzz_options.cpp).
std::string format_value(const std::string& v) {
  std::string out = "\"";
  for (const char c : v) {
    const auto u = static_cast<unsigned char>(c);
    if (u < 0x20 || u == 0x7f) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\x%02x", u);
      out += buf;
    } else {
      out += c;
    }
  }
  return out + "\"";
}
std::string format_value(Duration v) {
  return format_duration(v);
}

std::string int_type_name(std::int64_t min, std::int64_t max) {
  return "int " + std::to_string(min) + ".." + std::to_string(max);
}

void warn(std::vector<std::string>* warnings, std::string line) {
  if (warnings != nullptr) warnings->push_back(std::move(line));
}

void warn_value(std::vector<std::string>* warnings, std::string_view segment,
                std::string_view expected, const std::string& keeping) {
  warn(warnings, "connleak: ignoring option '" + printable(segment) +
                     "': " + std::string(expected) + "; keeping " + keeping);
}

void set_flag(bool* field, std::string_view value, std::string_view segment,
              std::vector<std::string>* warnings) {
  if (!parse_bool(value, field)) {
    warn_value(warnings, segment, "expected 1/0, true/false, yes/no or on/off",
               format_value(*field));
  }
}

void set_flag(std::string* field, std::string_view value, std::string_view,
              std::vector<std::string>*) {
  field->assign(value);
}

[[maybe_unused]] void set_flag(Duration* field, std::string_view value, std::string_view segment,
                               std::vector<std::string>* warnings) {
  if (!parse_duration(value, field)) {
    warn_value(warnings, segment, "expected a duration such as 30s, 1.5s, 250ms, 2m, 1h or 0",
               format_value(*field));
  }
}

void set_int_flag(std::int64_t* field, std::string_view value, std::string_view segment,
                  std::int64_t min, std::int64_t max, std::vector<std::string>* warnings) {
  if (!parse_int(value, min, max, field)) {
    warn_value(warnings, segment,
               "expected an integer from " + std::to_string(min) + " to " + std::to_string(max),
               format_value(*field));
  }
}

// An int declared with plain CONNLEAK_FLAG has the full range.
[[maybe_unused]] void set_flag(std::int64_t* field, std::string_view value,
                               std::string_view segment, std::vector<std::string>* warnings) {
  set_int_flag(field, value, segment, std::numeric_limits<std::int64_t>::min(),
               std::numeric_limits<std::int64_t>::max(), warnings);
}

bool is_known_key(std::string_view key) {
#define CONNLEAK_FLAG(Type, name, def, desc) \
  if (key == #name) return true;
#include "collector/policy/options.inc"
  return false;
}

// Returns false for an unknown key.
bool apply(Options* o, std::string_view key, std::string_view value, std::string_view segment,
           std::vector<std::string>* warnings) {
#define CONNLEAK_FLAG(Type, name, def, desc)      \
  if (key == #name) {                             \
    set_flag(&o->name, value, segment, warnings); \
    return true;                                  \
  }
#define CONNLEAK_INT_FLAG(name, def, min, max, desc)            \
  if (key == #name) {                                           \
    set_int_flag(&o->name, value, segment, min, max, warnings); \
    return true;                                                \
  }
#include "collector/policy/options.inc"
  return false;
}

void parse_into(std::string_view text, Options* out, std::vector<std::string>* warnings) {
  const std::size_t n = text.size();
  std::size_t i = 0;
  while (i < n) {
    std::size_t j = i;
    while (j < n && text[j] != ':' && text[j] != '=') ++j;
    if (j == n || text[j] == ':') {
      const std::string_view segment = trim(text.substr(i, j - i));
      if (!segment.empty()) {
        warn(warnings,
             "connleak: ignoring option '" + printable(segment) + "': expected key=value");
      }
      i = j + 1;
      continue;
    }

    const std::string_view key = trim(text.substr(i, j - i));
    std::size_t k = j + 1;
    while (k < n && is_space(text[k])) ++k;

    std::string_view value;
    std::size_t next;  // the ':' ending this segment, or n
    const char* problem = nullptr;
    if (k < n && (text[k] == '"' || text[k] == '\'')) {
      // Quotes only count at the start of a value, so a value like it's needs none.
      const std::size_t close = text.find(text[k], k + 1);
      if (close == std::string_view::npos) {
        problem = "unterminated quote";
        next = text.find(':', k);
      } else {
        value = text.substr(k + 1, close - k - 1);
        next = close + 1;
        while (next < n && is_space(text[next])) ++next;
        if (next < n && text[next] != ':') {
          problem = "unexpected text after the closing quote";
          next = text.find(':', next);
        }
      }
    } else {
      next = text.find(':', k);
      value = trim(text.substr(k, next == std::string_view::npos ? n - k : next - k));
    }
    if (next == std::string_view::npos) next = n;
    const std::string_view segment = trim(text.substr(i, next - i));

    if (key.empty()) {
      warn(warnings, "connleak: ignoring option '" + printable(segment) +
                         "': missing option name before '='");
    } else if (problem != nullptr) {
      // Check the key first so a typo is reported as such, not as a quoting problem.
      if (!is_known_key(key)) {
        warn(warnings, "connleak: ignoring unknown option '" + printable(key) +
                           "' (run with CONNLEAK_OPTIONS=help=1 for the list)");
      } else {
        warn(warnings, "connleak: ignoring option '" + printable(segment) + "': " + problem);
      }
    } else {
      const std::int64_t previous_signal = out->dump_signal;
      if (!apply(out, key, value, segment, warnings)) {
        warn(warnings, "connleak: ignoring unknown option '" + printable(key) +
                           "' (run with CONNLEAK_OPTIONS=help=1 for the list)");
      } else if (key == "dump_signal" && !dump_signal_allowed(out->dump_signal)) {
        // A fault signal would re-enter the faulting code after every dump (a loop), a
        // terminating one would be swallowed, SIGKILL/SIGSTOP/32/33 cannot be caught at all.
        warn(warnings, "connleak: ignoring option '" + printable(segment) +
                           "': dumps can only be asked with SIGUSR1 (10), SIGUSR2 (12) or a "
                           "real-time signal (" +
                           std::to_string(SIGRTMIN) + ".." + std::to_string(SIGRTMAX) +
                           "); keeping " + format_value(previous_signal));
        out->dump_signal = previous_signal;
      }
    }
    i = next + 1;
  }
}

}  // namespace

Options parse_options(std::string_view text, std::vector<std::string>* warnings) noexcept {
  Options out;
  const std::size_t before = warnings ? warnings->size() : 0;
  try {
    parse_into(text, &out, warnings);
    // 12,000 unknown keys must not print 12,000 lines into the host's stderr.
    constexpr std::size_t kShown = 5;
    if (warnings && warnings->size() - before > kShown + 1) {
      const std::size_t hidden = warnings->size() - before - kShown;
      warnings->resize(before + kShown);
      warnings->push_back("connleak: ... and " + std::to_string(hidden) +
                          " more option warnings not shown");
    }
  } catch (...) {
    // Only an allocation failure can get here; a half-parsed configuration beats killing the host.
  }
  return out;
}

bool dump_signal_allowed(std::int64_t sig) noexcept {
  return sig == 0 || sig == SIGUSR1 || sig == SIGUSR2 || (sig >= SIGRTMIN && sig <= SIGRTMAX);
}

bool parse_bool(std::string_view text, bool* out) noexcept {
  text = trim(text);
  for (std::string_view yes : {"1", "true", "yes", "on"}) {
    if (iequals(text, yes)) {
      *out = true;
      return true;
    }
  }
  for (std::string_view no : {"0", "false", "no", "off"}) {
    if (iequals(text, no)) {
      *out = false;
      return true;
    }
  }
  return false;
}

bool parse_int(std::string_view text, std::int64_t min, std::int64_t max,
               std::int64_t* out) noexcept {
  text = trim(text);
  // from_chars rejects a leading '+', which people do type.
  if (text.size() > 1 && text.front() == '+' && is_digit(text[1])) text.remove_prefix(1);
  std::int64_t v = 0;
  const char* end = text.data() + text.size();
  const auto [ptr, ec] = std::from_chars(text.data(), end, v, 10);
  if (text.empty() || ec != std::errc() || ptr != end || v < min || v > max) return false;
  *out = v;
  return true;
}

namespace {

// The value of "digits[.digits]" (already checked), without std::from_chars
// for double: libstdc++'s needs libm (fegetround), which the statically linked
// shim would then map into every host at start-up. Up to 15 significant digits
// and 22 decimals the result is exact to the last bit (the integer and the
// power of ten are both exact doubles, one division rounds once); digits past
// the 18th are below a duration's precision and only count towards the scale.
double decimal_value(std::string_view text) noexcept {
  static constexpr double kPow10[] = {1e0,  1e1,  1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8,  1e9,  1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
                                      1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22};
  std::uint64_t mantissa = 0;
  int kept = 0, decimals = 0, dropped_whole = 0;
  bool after_dot = false;
  for (char c : text) {
    if (c == '.') {
      after_dot = true;
      continue;
    }
    if (kept < 18) {
      mantissa = mantissa * 10 + static_cast<std::uint64_t>(c - '0');
      if (mantissa != 0) ++kept;
      if (after_dot) ++decimals;
    } else if (!after_dot) {
      ++dropped_whole;
    }
  }
  double v = static_cast<double>(mantissa);
  for (; dropped_whole > 0; dropped_whole -= 22) v *= kPow10[std::min(dropped_whole, 22)];
  for (; decimals > 0; decimals -= 22) v /= kPow10[std::min(decimals, 22)];
  return v;
}

}  // namespace

bool parse_duration(std::string_view text, Duration* out) noexcept {
  text = trim(text);
  std::size_t i = 0;
  int digits = 0;
  int dots = 0;
  for (; i < text.size(); ++i) {
    if (is_digit(text[i])) {
      ++digits;
    } else if (text[i] == '.') {
      ++dots;
    } else {
      break;
    }
  }
  // Checked by hand because from_chars would also take exponents, "inf" and "nan".
  if (digits == 0 || dots > 1) return false;
  const std::string_view unit = trim(text.substr(i));
  double scale;
  if (unit.empty() || iequals(unit, "s")) {
    scale = 1;
  } else if (iequals(unit, "ms")) {
    scale = 0.001;
  } else if (iequals(unit, "m")) {
    scale = 60;
  } else if (iequals(unit, "h")) {
    scale = 3600;
  } else {
    return false;
  }
  double v = decimal_value(text.substr(0, i));
  v *= scale;
  if (!std::isfinite(v) || v < 0 || v > 1e9) return false;
  out->seconds = v;
  return true;
}

std::string format_duration(Duration d) noexcept {
  try {
    const double s = d.seconds;
    if (!std::isfinite(s)) return "invalid";
    if (s == 0) return "0";
    if (s < 0) return "-" + format_duration(Duration{-s});
    if (s < 1) return format_fixed(s * 1000, 6) + "ms";
    if (s == std::floor(s) && s < 9e15) {
      const auto whole = static_cast<std::int64_t>(s);
      if (whole % 3600 == 0) return std::to_string(whole / 3600) + "h";
      if (whole % 60 == 0) return std::to_string(whole / 60) + "m";
      return std::to_string(whole) + "s";
    }
    return format_fixed(s, 9) + "s";
  } catch (...) {
    return {};
  }
}

std::string options_help(const Options& current) noexcept {
  try {
    struct Row {
      const char* name;
      std::string type;
      std::string value;
      const char* desc;
    };
    std::vector<Row> rows;
#define CONNLEAK_FLAG(Type, name, def, desc) \
  rows.push_back({#name, type_name(&current.name), format_value(current.name), desc});
#define CONNLEAK_INT_FLAG(name, def, min, max, desc) \
  rows.push_back({#name, int_type_name(min, max), format_value(current.name), desc});
#include "collector/policy/options.inc"

    std::size_t w_name = 0, w_type = 0, w_value = 0;
    for (const Row& r : rows) {
      w_name = std::max(w_name, std::string_view(r.name).size());
      w_type = std::max(w_type, r.type.size());
      w_value = std::max(w_value, r.value.size());
    }
    auto pad = [](std::string_view s, std::size_t w) {
      std::string out(s);
      out.resize(std::max(w, s.size()) + 2, ' ');
      return out;
    };
    std::string out = "connleak: options (set as CONNLEAK_OPTIONS=key=value:key=value):\n";
    for (const Row& r : rows) {
      out +=
          "  " + pad(r.name, w_name) + pad(r.type, w_type) + pad(r.value, w_value) + r.desc + "\n";
    }
    return out;
  } catch (...) {
    return {};
  }
}

std::string options_markdown_table() noexcept {
  try {
    // '|' would end the cell even inside a code span (GFM strips the backslash there), and
    // outside one "<pid>" would render as an unknown HTML tag, i.e. vanish.
    auto cell = [](std::string_view s, bool code_span) {
      std::string out;
      for (char c : s) {
        if (c == '|' || (!code_span && (c == '<' || c == '>'))) out += '\\';
        out += c;
      }
      return out;
    };
    const Options defaults;
    std::string out = "| Option | Type | Default | Description |\n|---|---|---|---|\n";
#define CONNLEAK_FLAG(Type, name, def, desc)                                    \
  out += "| `" #name "` | " + std::string(type_name(&defaults.name)) + " | `" + \
         cell(format_value(defaults.name), true) + "` | " + cell(desc, false) + " |\n";
#define CONNLEAK_INT_FLAG(name, def, min, max, desc)             \
  out += "| `" #name "` | " + int_type_name(min, max) + " | `" + \
         cell(format_value(defaults.name), true) + "` | " + cell(desc, false) + " |\n";
#include "collector/policy/options.inc"
    return out;
  } catch (...) {
    return {};
  }
}

}  // namespace connleak
