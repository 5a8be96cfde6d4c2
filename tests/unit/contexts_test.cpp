// Test attribution (issue 17): contexts are interned once, stamped on every
// connection and checkout opened while current, asked back per context, and
// carried through the JSON and text reports.
#include "collector/core/contexts.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "collector/core/checkouts.h"
#include "collector/core/registry.h"
#include "collector/report/format/report_json.h"
#include "collector/report/format/report_sarif.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_checkouts.h"

namespace connleak {
namespace {

// Restores "no context" whatever a test leaves current.
struct ContextScope {
  ~ContextScope() { set_current_context(0); }
};

TEST(ContextTable, TheSameTripleIsTheSameIdAndLabelsComeBack) {
  ContextTable table;
  std::uint32_t test = table.intern("t.py::test_a", "", "");
  std::uint32_t fixture = table.intern("t.py::test_a", "db", "module");
  EXPECT_GT(test, 0u);
  EXPECT_NE(test, fixture);
  EXPECT_EQ(table.intern("t.py::test_a", "", ""), test);
  EXPECT_EQ(table.size(), 2u);
  ContextLabel label;
  ASSERT_TRUE(table.label(fixture, &label));
  EXPECT_STREQ(label.test, "t.py::test_a");
  EXPECT_STREQ(label.fixture, "db");
  EXPECT_STREQ(label.scope, "module");
  EXPECT_FALSE(table.label(0, &label));
  EXPECT_FALSE(table.label(3, &label));
}

TEST(ContextTable, RecordsOpenedWhileCurrentCarryItOthersDoNot) {
  ContextScope restore;
  Registry reg;
  ConnRecord before;
  before.handle = 0x100;
  reg.on_open(before);
  std::uint32_t ctx = ContextTable::instance().intern("t.py::test_stamp", "", "");
  EXPECT_EQ(set_current_context(ctx), 0u);
  ConnRecord during;
  during.handle = 0x200;
  reg.on_open(during);
  CheckoutTable table;
  std::uint64_t pool = table.register_pool("test.Pool", "p", "", 2);
  CheckoutRecord co;
  co.pool = pool;
  co.checked_out = now();
  std::uint64_t open_id = table.on_checkout(co);
  std::uint64_t reclaimed_id = table.on_checkout(co);
  std::uint64_t returned_id = table.on_checkout(co);
  EXPECT_EQ(set_current_context(0), ctx);
  std::uint64_t other = table.on_checkout(co);  // no context: not the test's

  std::map<std::uintptr_t, std::uint32_t> stamped;
  reg.scan(mono_now_ns() + 1'000'000'000,
           [&](const ConnRecord& r) { stamped[r.handle] = r.context; });
  EXPECT_EQ(stamped[0x100], 0u);
  EXPECT_EQ(stamped[0x200], ctx);

  Timestamp later = now();
  later.mono_ns += 2'000'000'000;  // held 2 s
  ASSERT_TRUE(table.on_checkin(reclaimed_id, CheckoutEnd::kReclaimed, now()));
  ASSERT_TRUE(table.on_checkin(returned_id, CheckoutEnd::kReturned, later));
  ASSERT_TRUE(table.on_checkin(other, CheckoutEnd::kReclaimed, now()));
  CheckoutTable::ContextCheckouts mine = table.of_context(ctx);
  ASSERT_EQ(mine.open.size(), 1u);
  EXPECT_EQ(mine.open[0].id, open_id);
  ASSERT_EQ(mine.reclaimed.size(), 1u);
  EXPECT_EQ(mine.reclaimed[0].id, reclaimed_id);
  EXPECT_EQ(mine.longest.id, returned_id);  // the longest hold, though returned
  EXPECT_TRUE(table.of_context(ctx + 1000).open.empty());
}

TEST(ContextReport, JsonRoundTripAndTextNameTheTestOrTheFixture) {
  Report r;
  r.trigger = Trigger::kExit;
  Connection c;
  c.id = 1;
  c.library = ConnLibrary::kLibpq;
  c.status = ConnStatus::kLeaked;
  c.context = ContextInfo{"t.py::test_a", "db", "module"};
  r.connections.push_back(c);
  Checkout co;
  co.id = 2;
  co.pool = 1;
  co.status = CheckoutStatus::kLeaked;
  co.context = ContextInfo{"t.py::test_b", std::nullopt, std::nullopt};
  r.checkouts.push_back(co);
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j["connections"][0]["context"],
            nlohmann::json({{"test", "t.py::test_a"}, {"fixture", "db"}, {"scope", "module"}}));
  EXPECT_EQ(j["checkouts"][0]["context"], nlohmann::json({{"test", "t.py::test_b"}}));
  Report back = report_from_json(nlohmann::json::parse(to_json_text(r)));
  ASSERT_TRUE(back.connections[0].context);
  EXPECT_EQ(back.connections[0].context->fixture, "db");
  EXPECT_EQ(back.checkouts[0].context->test, "t.py::test_b");
  EXPECT_FALSE(back.checkouts[0].context->fixture);
  EXPECT_NE(describe_connection(c).find(", fixture db (module) of t.py::test_a"),
            std::string::npos);
  EXPECT_NE(describe_checkout(r, co).find(", test t.py::test_b)"), std::string::npos);
  // Without a context nothing is added.
  Connection plain = c;
  plain.context.reset();
  Report bare;
  bare.connections.push_back(plain);
  EXPECT_EQ(to_json(bare)["connections"][0].count("context"), 0u);
}

TEST(ContextReport, SarifResultsListTheTestsThatOpenedThem) {
  Report r;
  r.trigger = Trigger::kExit;
  Connection leak;
  leak.id = 1;
  leak.library = ConnLibrary::kLibpq;
  leak.status = ConnStatus::kLeaked;
  leak.acquired.script = std::vector<Frame>{{std::nullopt, std::nullopt, "test_a", "/s/t.py", 3}};
  leak.context = ContextInfo{"t.py::test_a", std::nullopt, std::nullopt};
  r.connections.push_back(leak);
  Checkout co;
  co.id = 2;
  co.status = CheckoutStatus::kLeaked;
  co.acquired.script = std::vector<Frame>{{std::nullopt, std::nullopt, "test_b", "/s/t.py", 9}};
  co.context = ContextInfo{"t.py::test_b", std::nullopt, std::nullopt};
  r.checkouts.push_back(co);
  Connection plain = leak;  // the canary: no context, no "tests"
  plain.id = 3;
  plain.acquired.script = std::vector<Frame>{{std::nullopt, std::nullopt, "main", "/s/m.py", 1}};
  plain.context.reset();
  r.connections.push_back(plain);
  auto sarif = to_sarif(r);
  std::set<std::string> seen;
  int without = 0;
  for (const auto& result : sarif["runs"][0]["results"]) {
    if (!result["properties"].contains("tests")) {
      ++without;
      continue;
    }
    for (const auto& t : result["properties"]["tests"]) seen.insert(t.get<std::string>());
  }
  EXPECT_EQ(seen, (std::set<std::string>{"t.py::test_a", "t.py::test_b"}));
  EXPECT_EQ(without, 1);
}

}  // namespace
}  // namespace connleak
