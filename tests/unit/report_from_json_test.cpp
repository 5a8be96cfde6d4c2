// report_from_json on numbers it must not trust. Found by
// tests/fuzz/fuzz_report_reader.cpp (corpus/report_reader/number-out-of-range.json):
// nlohmann's get<T>() converted any number, so 1e300 in an integer field was
// undefined behaviour (UBSan), a negative counter wrapped around and pids
// above 2^31 were cut to an int.
#include <gtest/gtest.h>

#include <limits>
#include <nlohmann/json.hpp>
#include <stdexcept>
#include <string>

#include "collector/report/format/report_json.h"

namespace connleak {
namespace {

using nlohmann::json;

json minimal() {
  return json::parse(R"({"tool": "connleak", "pid": 7, "summary": {"opened": 1},
    "connections": [{"id": 1, "status": "leaked", "resets": 2, "age_seconds": 1.5,
      "acquired": {"native": [{"address": "0x10", "function": "f", "line": 3}]}}]})");
}

// The message of the rejection, or "" when the report was accepted.
std::string rejection(const json& doc) {
  try {
    report_from_json(doc);
    return "";
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
}

TEST(ReportFromJson, AcceptsTheFullRangeOfEachField) {
  json doc = minimal();
  doc["pid"] = 5000000000LL;  // above 2^31: was cut to 705032704
  doc["ppid"] = -1;
  doc["summary"]["opened"] = std::numeric_limits<std::uint64_t>::max();
  doc["connections"][0]["id"] = std::numeric_limits<std::uint64_t>::max();
  doc["connections"][0]["resets"] = 4294967295u;
  const Report r = report_from_json(json::parse(doc.dump()));  // as read from a file
  EXPECT_EQ(r.pid, 5000000000LL);
  EXPECT_EQ(r.ppid, -1);
  EXPECT_EQ(r.summary.opened, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(r.connections.at(0).id, std::numeric_limits<std::uint64_t>::max());
  EXPECT_EQ(r.connections.at(0).resets, 4294967295u);
  EXPECT_EQ(r.connections.at(0).acquired.native.at(0).line, 3);
  // The same through a DOM built in memory (non-negative integers held as signed).
  EXPECT_EQ(report_from_json(doc).pid, 5000000000LL);
}

TEST(ReportFromJson, RejectsNumbersOutsideTheFieldNamingIt) {
  struct Case {
    json::json_pointer where;
    json value;
    std::string message;
  };
  const Case cases[] = {
      {json::json_pointer("/pid"), 1e300,
       "\"pid\" is not an integer from -9223372036854775808 to 9223372036854775807"},
      {json::json_pointer("/pid"), 1.5,
       "\"pid\" is not an integer from -9223372036854775808 to 9223372036854775807"},
      {json::json_pointer("/summary/opened"), -5,
       "\"opened\" is not an integer from 0 to 18446744073709551615"},
      {json::json_pointer("/connections/0/resets"), 4294967296LL,
       "\"resets\" is not an integer from 0 to 4294967295"},
      {json::json_pointer("/connections/0/acquired/native/0/line"), 1e30,
       "\"line\" is not an integer from -2147483648 to 2147483647"},
      {json::json_pointer("/connections/0/age_seconds"), -1,
       "\"age_seconds\" is not a number of seconds"},
  };
  for (const Case& c : cases) {
    json doc = minimal();
    doc[c.where] = c.value;
    EXPECT_EQ(rejection(json::parse(doc.dump())), c.message) << c.where.to_string();
  }
  EXPECT_EQ(rejection(minimal()), "");
}

}  // namespace
}  // namespace connleak
