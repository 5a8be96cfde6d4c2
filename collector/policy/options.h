#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace connleak {

// A plain double so that Options stays an aggregate of trivially parsed values; the owner of
// each threshold converts it to whatever clock type it needs.
struct Duration {
  double seconds = 0;
};

// Field types and defaults come from options.inc. Options holds std::string members, so do not
// make it a namespace-scope global in the shim (its destructor would run during exit while hooks
// may still read it): keep it heap-allocated or behind a function-local pointer.
struct Options {
#define CONNLEAK_FLAG(Type, name, def, desc) Type name = def;
#include "collector/policy/options.inc"
};

// Parses CONNLEAK_OPTIONS-style text "key=value:key=value". Each problem appends one line
// (without a trailing newline) to *warnings, which may be null, naming the key, e.g.
//   connleak: ignoring option 'stack_depth=abc': expected an integer from 1 to 128; keeping 32
//   connleak: ignoring unknown option 'foo' (run with CONNLEAK_OPTIONS=help=1 for the list)
// A rejected value leaves the option as it was (default, or an earlier valid occurrence); a
// later valid occurrence overrides an earlier one. A value may be quoted with "..." or '...' to
// contain ':'; whitespace around keys and values is trimmed; empty segments are ignored. Keys
// are case-sensitive. Never throws: on allocation failure it returns what it parsed so far.
Options parse_options(std::string_view text, std::vector<std::string>* warnings) noexcept;

// The signals `dump_signal` accepts: 0 (none), SIGUSR1, SIGUSR2, SIGRTMIN..SIGRTMAX.
bool dump_signal_allowed(std::int64_t sig) noexcept;

// Value syntax of each option type, shared with the CLI so `connleak run` can reject a bad flag
// before exporting it. *out is written only on success.
// Bools: 1/0, true/false, yes/no, on/off (case-insensitive).
bool parse_bool(std::string_view text, bool* out) noexcept;
// Decimal integer in [min, max], optional sign.
bool parse_int(std::string_view text, std::int64_t min, std::int64_t max,
               std::int64_t* out) noexcept;
// Non-negative decimal number with optional unit ms, s, m or h (bare number = seconds), e.g.
// "30s", "1.5s", "250ms", "0". Values above 1e9 s are rejected so that any consumer can
// convert to int64 nanoseconds without overflow.
bool parse_duration(std::string_view text, Duration* out) noexcept;
// Inverse of parse_duration: "30s", "1.5s", "250ms", "2m", "1h", "0".
std::string format_duration(Duration d) noexcept;

// The help=1 text: a heading line, then one line per option with name, type, current value
// and description. Ends with a newline.
std::string options_help(const Options& current) noexcept;
// The README table: "| Option | Type | Default | Description |", a separator row, then one
// row per option. Ends with a newline.
std::string options_markdown_table() noexcept;

}  // namespace connleak
