#pragma once
// The report's closed vocabularies (connection and checkout status, library,
// trigger, alert kind) as typed enums, each spelled by ONE name table below.
// The report code compares enum values; names appear only where a report is
// written (JSON, text...) and where one is read back (report_from_json).
//
// An input report may come from a newer connleak with a value this one does
// not know (the contract lets writers extend: "pooled", "reclaimed" and most
// alert kinds were added that way). Such a value is kept as kUnknown with its
// text, so old and new reports still merge and re-render unchanged, instead
// of rejecting a whole file for one new word.
#include <array>
#include <cstdint>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>

namespace connleak {

enum class ConnStatus : std::uint8_t { kLeaked, kOpen, kClosed, kPooled, kUnknown };
enum class CheckoutStatus : std::uint8_t { kLeaked, kOpen, kReturned, kReclaimed, kUnknown };
// kCheckout: a pool checkout shown as a connection by the CI formats
// (report_findings); never the library of a connection in a report.
enum class ConnLibrary : std::uint8_t { kLibpq, kMysql, kSocket, kCheckout, kUnknown };
// kKilled (extension): rebuilt from the journal of a process that died without
// its exit report. kMetrics: the worker thread's metrics_file refresh, never a JSON file.
enum class Trigger : std::uint8_t {
  kExit,
  kSignal,
  kRequest,
  kPoolExhausted,
  kServerRefused,
  kKilled,
  kMetrics,
  kUnknown
};
enum class AlertKind : std::uint8_t {
  kLifetime,
  kIdleInTransaction,
  kIdle,
  kDoubleClose,
  kCheckoutHeld,
  kUnknown
};

// The language of a host's own stack (beside the native one); its name is the
// stack's JSON key ("python" is the contract's; the others are extensions).
enum class ScriptLanguage : std::uint8_t { kNone, kPython, kRuby, kPerl, kPhp };

template <typename E>
struct EnumNames;  // static constexpr std::array<std::pair<E, std::string_view>, N> kTable

template <>
struct EnumNames<ConnStatus> {
  static constexpr std::array<std::pair<ConnStatus, std::string_view>, 4> kTable{{
      {ConnStatus::kLeaked, "leaked"},
      {ConnStatus::kOpen, "open"},
      {ConnStatus::kClosed, "closed"},
      {ConnStatus::kPooled, "pooled"},
  }};
};
template <>
struct EnumNames<CheckoutStatus> {
  static constexpr std::array<std::pair<CheckoutStatus, std::string_view>, 4> kTable{{
      {CheckoutStatus::kLeaked, "leaked"},
      {CheckoutStatus::kOpen, "open"},
      {CheckoutStatus::kReturned, "returned"},
      {CheckoutStatus::kReclaimed, "reclaimed"},
  }};
};
template <>
struct EnumNames<ConnLibrary> {
  static constexpr std::array<std::pair<ConnLibrary, std::string_view>, 4> kTable{{
      {ConnLibrary::kLibpq, "libpq"},
      {ConnLibrary::kMysql, "mysql"},
      {ConnLibrary::kSocket, "socket"},
      {ConnLibrary::kCheckout, "checkout"},
  }};
};
template <>
struct EnumNames<Trigger> {
  static constexpr std::array<std::pair<Trigger, std::string_view>, 7> kTable{{
      {Trigger::kExit, "exit"},
      {Trigger::kSignal, "signal"},
      {Trigger::kRequest, "request"},
      {Trigger::kPoolExhausted, "pool_exhausted"},
      {Trigger::kServerRefused, "server_refused"},
      {Trigger::kKilled, "killed"},
      {Trigger::kMetrics, "metrics"},
  }};
};
template <>
struct EnumNames<AlertKind> {
  static constexpr std::array<std::pair<AlertKind, std::string_view>, 5> kTable{{
      {AlertKind::kLifetime, "lifetime"},
      {AlertKind::kIdleInTransaction, "idle_in_transaction"},
      {AlertKind::kIdle, "idle"},
      {AlertKind::kDoubleClose, "double_close"},
      {AlertKind::kCheckoutHeld, "checkout_held"},
  }};
};

template <>
struct EnumNames<ScriptLanguage> {
  static constexpr std::array<std::pair<ScriptLanguage, std::string_view>, 4> kTable{{
      {ScriptLanguage::kPython, "python"},
      {ScriptLanguage::kRuby, "ruby"},
      {ScriptLanguage::kPerl, "perl"},
      {ScriptLanguage::kPhp, "php"},
  }};
};

// The name of a known value; "" for kUnknown (whose text only a Named keeps).
template <typename E>
constexpr std::string_view to_string(E value) {
  for (const auto& [v, name] : EnumNames<E>::kTable)
    if (v == value) return name;
  return {};
}

// The value named `text`, or nullopt when the table does not have it.
template <typename E>
constexpr std::optional<E> parse_enum(std::string_view text) {
  for (const auto& [v, name] : EnumNames<E>::kTable)
    if (name == text) return v;
  return std::nullopt;
}

// True when `raw`, a number read from a file, is one of E's named values:
// checked before the cast, so that a table entry added later is accepted
// without a second bound to update.
template <typename E>
constexpr bool names_value(std::uint64_t raw) {
  for (const auto& [v, name] : EnumNames<E>::kTable)
    if (static_cast<std::uint64_t>(v) == raw) return true;
  return false;
}

// A report field of one of the enums above: the value, plus the text of an
// unknown value read from another connleak's report (written back unchanged).
// Built from a name (the shim still passes names) it parses once, here.
// Comparing with a string does not compile: compare with the enum.
template <typename E>
class Named {
 public:
  Named() = default;
  Named(E value) : value_(value) {}  // NOLINT: implicit, a field is assigned its value
  Named(std::string_view text) {     // NOLINT: implicit, "request" from the shim
    if (auto v = parse_enum<E>(text))
      value_ = *v;
    else
      text_ = text;
  }
  Named(const char* text) : Named(std::string_view(text)) {}         // NOLINT
  Named(const std::string& text) : Named(std::string_view(text)) {}  // NOLINT

  E value() const { return value_; }
  bool known() const { return value_ != E::kUnknown; }
  // The name as a report spells it: the table's, or the text read for kUnknown.
  std::string_view name() const { return known() ? to_string(value_) : std::string_view(text_); }
  std::string str() const { return std::string(name()); }

  friend bool operator==(const Named& a, E b) { return a.value_ == b; }
  friend bool operator!=(const Named& a, E b) { return a.value_ != b; }
  friend bool operator==(const Named& a, const Named& b) {
    return a.value_ == b.value_ && a.text_ == b.text_;
  }
  friend bool operator!=(const Named& a, const Named& b) { return !(a == b); }
  friend bool operator==(const Named&, const char*) = delete;
  friend bool operator!=(const Named&, const char*) = delete;
  friend bool operator==(const Named&, const std::string&) = delete;
  friend bool operator!=(const Named&, const std::string&) = delete;

  friend std::ostream& operator<<(std::ostream& out, const Named& n) { return out << n.name(); }

 private:
  E value_ = E::kUnknown;
  std::string text_;  // kUnknown only
};

// nlohmann::json (found by argument-dependent lookup): a field is written as its name.
template <typename Json, typename E>
void to_json(Json& j, const Named<E>& n) {
  j = n.str();
}

}  // namespace connleak
