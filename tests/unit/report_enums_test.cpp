// The report's enums: every value has one name in its table and comes back
// from it, and a value this build does not know (a newer connleak's report)
// is kept with its text instead of rejecting the file.
#include "collector/report/report_enums.h"

#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_merge.h"

namespace connleak {
namespace {

using nlohmann::json;

// Every value before kUnknown: named once, parsed back to itself, and the
// name is the one a report spells (Named on both sides).
template <typename E>
void round_trips_every_value() {
  const int count = static_cast<int>(E::kUnknown);
  EXPECT_EQ(static_cast<int>(EnumNames<E>::kTable.size()), count) << "a value has no name";
  std::set<std::string_view> names;
  for (int i = 0; i < count; ++i) {
    const auto value = static_cast<E>(i);
    const std::string_view name = to_string(value);
    EXPECT_FALSE(name.empty()) << i;
    EXPECT_TRUE(names.insert(name).second) << "two values named " << name;
    ASSERT_TRUE(parse_enum<E>(name).has_value()) << name;
    EXPECT_EQ(*parse_enum<E>(name), value) << name;
    const Named<E> from_text(std::string{name});
    EXPECT_TRUE(from_text.known());
    EXPECT_EQ(from_text, value);
    EXPECT_EQ(Named<E>(value).name(), name);
  }
  EXPECT_TRUE(to_string(E::kUnknown).empty());
  EXPECT_FALSE(parse_enum<E>("").has_value());
  EXPECT_FALSE(parse_enum<E>("Leaked").has_value());  // names are exact, case included
}

TEST(ReportEnums, EveryValueRoundTripsThroughItsNameTable) {
  round_trips_every_value<ConnStatus>();
  round_trips_every_value<CheckoutStatus>();
  round_trips_every_value<ConnLibrary>();
  round_trips_every_value<Trigger>();
  round_trips_every_value<AlertKind>();
}

TEST(ReportEnums, TheContractsSpellingsAreTheTablesNames) {
  // shared/spec/contract.md: status, library, trigger and the two alert kinds it names.
  EXPECT_EQ(to_string(ConnStatus::kLeaked), "leaked");
  EXPECT_EQ(to_string(ConnStatus::kOpen), "open");
  EXPECT_EQ(to_string(ConnStatus::kClosed), "closed");
  EXPECT_EQ(to_string(ConnLibrary::kLibpq), "libpq");
  EXPECT_EQ(to_string(ConnLibrary::kMysql), "mysql");
  EXPECT_EQ(to_string(ConnLibrary::kSocket), "socket");
  EXPECT_EQ(to_string(Trigger::kExit), "exit");
  EXPECT_EQ(to_string(Trigger::kSignal), "signal");
  EXPECT_EQ(to_string(Trigger::kRequest), "request");
  EXPECT_EQ(to_string(AlertKind::kLifetime), "lifetime");
  EXPECT_EQ(to_string(AlertKind::kIdleInTransaction), "idle_in_transaction");
}

json newer_report() {
  return json::parse(R"({"tool": "connleak", "version": "9.0.0", "pid": 70, "ppid": 1,
    "trigger": "watchdog_restart", "summary": {"opened": 2, "open": 2, "leaked": 1, "flagged": 1},
    "connections": [
      {"id": 1, "library": "odbc", "handle": "0x10", "target": "dsn=app", "status": "evicted",
       "alerts": [{"kind": "too_many_statements", "after_seconds": 2.0}],
       "acquired": {"native": [{"address": "0x10", "function": "open_odbc", "line": 3}]}},
      {"id": 2, "library": "libpq", "handle": "0x20", "target": "dbname=app", "status": "leaked",
       "acquired": {"native": [{"address": "0x20", "function": "open_pq", "line": 4}]}}]})");
}

TEST(ReportEnums, UnknownValuesInAnInputReportAreKeptWithTheirText) {
  const Report r = report_from_json(newer_report());
  ASSERT_EQ(r.connections.size(), 2u);
  const Connection& odbc = r.connections[0];
  EXPECT_EQ(r.trigger, Trigger::kUnknown);
  EXPECT_EQ(r.trigger.name(), "watchdog_restart");
  EXPECT_EQ(odbc.status, ConnStatus::kUnknown);
  EXPECT_EQ(odbc.status.name(), "evicted");
  EXPECT_EQ(odbc.library, ConnLibrary::kUnknown);
  EXPECT_EQ(odbc.library.name(), "odbc");
  ASSERT_EQ(odbc.alerts.size(), 1u);
  EXPECT_EQ(odbc.alerts[0].kind, AlertKind::kUnknown);
  EXPECT_EQ(odbc.alerts[0].kind.name(), "too_many_statements");
  EXPECT_EQ(r.connections[1].status, ConnStatus::kLeaked);

  // Written back unchanged, so a merge of old and new reports loses nothing.
  const json again = json::parse(to_json_text(r));
  EXPECT_EQ(again["trigger"], "watchdog_restart");
  EXPECT_EQ(again["connections"][0]["status"], "evicted");
  EXPECT_EQ(again["connections"][0]["library"], "odbc");
  EXPECT_EQ(again["connections"][0]["alerts"][0]["kind"], "too_many_statements");

  // Merged with this build's own exit report: both kept; the exit report
  // decides the trigger, the unknown status counts as neither leaked nor open.
  Report ours;
  ours.pid = 71;
  ours.trigger = Trigger::kExit;
  const Report merged = merge_reports({r, ours});
  EXPECT_EQ(merged.trigger, Trigger::kExit);
  ASSERT_EQ(merged.connections.size(), 2u);
  EXPECT_EQ(merged.connections[0].status.name(), "evicted");

  // The text report of an exit lists the leak; a status it does not know is
  // neither a leak nor a misuse (an unknown trigger reads as a dump).
  Report at_exit = r;
  at_exit.trigger = Trigger::kExit;
  const std::string text = render_text(at_exit);
  EXPECT_NE(text.find("open_pq"), std::string::npos) << text;
  EXPECT_EQ(text.find("open_odbc"), std::string::npos) << "listed as a leak: " << text;
}

TEST(ReportEnums, AnUnknownValueIsMadePrintableInText) {
  json doc = newer_report();
  doc["trigger"] = "exit";
  doc["connections"][0]["status"] = "leaked";
  doc["connections"][0]["library"] =
      "od\x1b]0;pwned\x07"
      "bc";
  const std::string text = render_text(report_from_json(doc));
  EXPECT_NE(text.find("open_odbc"), std::string::npos) << text;
  EXPECT_EQ(text.find('\x1b'), std::string::npos) << text;
}

}  // namespace
}  // namespace connleak
