// The collector's side of pool checkouts: the table, the report it feeds
// (pooled connections, leaked and reclaimed checkouts), JSON round trips and
// the merge of several processes.
#include "collector/core/checkouts.h"

#include <gtest/gtest.h>

#include "collector/report/format/report_json.h"
#include "collector/report/format/report_text.h"
#include "collector/report/report_builder.h"
#include "collector/report/report_checkouts.h"
#include "collector/report/report_merge.h"

namespace connleak {
namespace {

CheckoutRecord checkout_of(std::uint64_t pool, std::uint64_t connection) {
  CheckoutRecord c;
  c.pool = pool;
  c.connection = connection;
  c.checked_out = now();
  c.thread = 77;
  return c;
}

TEST(CheckoutTable, CountsTakenReturnedReclaimedAndKeepsLeaksForTheReport) {
  CheckoutTable table;
  std::uint64_t pool = table.register_pool("test.Pool", "p#1", "postgresql://app@db/app", 4);
  EXPECT_EQ(pool, 1u);
  EXPECT_TRUE(table.has_pool(pool));
  EXPECT_FALSE(table.has_pool(2));
  std::uint64_t a = table.on_checkout(checkout_of(pool, 10));
  std::uint64_t b = table.on_checkout(checkout_of(pool, 11));
  std::uint64_t c = table.on_checkout(checkout_of(pool, 12));
  EXPECT_EQ(table.open_count(), 3u);
  EXPECT_TRUE(table.on_checkin(a, CheckoutEnd::kReturned, now()));
  EXPECT_FALSE(table.on_checkin(a, CheckoutEnd::kReturned, now()));  // already ended
  EXPECT_FALSE(table.on_checkin(999, CheckoutEnd::kReturned, now()));
  EXPECT_TRUE(table.on_checkin(b, CheckoutEnd::kReclaimed, now()));
  CheckoutSnapshot snap = table.snapshot(mono_now_ns() + 1'000'000'000);
  EXPECT_EQ(snap.counters.taken, 3u);
  EXPECT_EQ(snap.counters.returned, 1u);
  EXPECT_EQ(snap.counters.reclaimed, 1u);
  ASSERT_EQ(snap.open.size(), 1u);
  EXPECT_EQ(snap.open[0].id, c);
  ASSERT_EQ(snap.ended.size(), 2u);
  ASSERT_EQ(snap.pools.size(), 1u);
  EXPECT_STREQ(snap.pools[0].kind, "test.Pool");
}

TEST(CheckoutTable, ReturnedCheckoutsAreBoundedAlertedOnesKept) {
  CheckoutTable table;
  std::uint64_t pool = table.register_pool("test.Pool", "p", "", -1);
  std::uint64_t flagged = table.on_checkout(checkout_of(pool, 1));
  table.update_open(flagged, [](CheckoutRecord& r) { r.alerted = true; });
  table.on_checkin(flagged, CheckoutEnd::kReturned, now());
  for (std::size_t i = 0; i < CheckoutTable::kRecentReturns + 50; ++i)
    table.on_checkin(table.on_checkout(checkout_of(pool, 2)), CheckoutEnd::kReturned, now());
  CheckoutSnapshot snap = table.snapshot(mono_now_ns() + 1'000'000'000);
  EXPECT_EQ(snap.ended.size(), CheckoutTable::kRecentReturns + 1);
  EXPECT_EQ(snap.ended.front().id, flagged);  // the alerted one survives the window
  EXPECT_EQ(snap.counters.returned, CheckoutTable::kRecentReturns + 51);
}

TEST(CheckoutTable, SnapshotSlotIsRateLimitedPerPool) {
  CheckoutTable table;
  std::uint64_t p1 = table.register_pool("a", "", "", 1);
  std::uint64_t p2 = table.register_pool("b", "", "", 1);
  const std::int64_t t = 1'000'000'000, ten_s = 10'000'000'000;
  EXPECT_TRUE(table.take_snapshot_slot(p1, t, ten_s));
  EXPECT_FALSE(table.take_snapshot_slot(p1, t + ten_s / 2, ten_s));
  EXPECT_TRUE(table.take_snapshot_slot(p2, t + ten_s / 2, ten_s));  // another pool
  EXPECT_TRUE(table.take_snapshot_slot(p1, t + ten_s, ten_s));
  EXPECT_FALSE(table.take_snapshot_slot(99, t, ten_s));
}

// A registry snapshot with three adopted connections (one lent to a checkout
// never returned) and one plain leaked connection.
struct Fixture {
  Snapshot snap;
  CheckoutSnapshot checkouts;
  Fixture() {
    for (std::uint64_t id = 1; id <= 4; ++id) {
      ConnRecord r;
      r.id = id;
      r.handle = 0x1000 * id;
      r.opened = now();
      r.pool = id <= 3 ? 1 : 0;
      snap.open.push_back(r);
    }
    PoolRecord pool;
    pool.id = 1;
    pool.kind = "sqlalchemy.QueuePool";
    pool.name = "sqlalchemy#1";
    pool.target = "postgresql://app@db/app";
    pool.max_size = 5;
    checkouts.pools.push_back(pool);
    CheckoutRecord open = checkout_of(1, 3);
    open.id = 5;
    open.task = "Task-3";
    checkouts.open.push_back(open);
    CheckoutRecord reclaimed = checkout_of(1, 2);
    reclaimed.id = 4;
    reclaimed.end = CheckoutEnd::kReclaimed;
    reclaimed.returned = now();
    checkouts.ended.push_back(reclaimed);
    checkouts.counters = {6, 4, 1};
  }
  Report build(const std::string& trigger) {
    Symbolizer symbolizer;
    return build_report(snap, trigger, ProcessInfo{100, 1, {"app"}}, symbolizer, nullptr,
                        &checkouts);
  }
};

TEST(CheckoutReport, AdoptedConnectionsArePooledNotLeakedOpenCheckoutsAre) {
  Fixture f;
  Report r = f.build("exit");
  EXPECT_EQ(r.summary.leaked, 1u);  // connection 4, not adopted
  EXPECT_EQ(r.summary.pooled, 3u);
  EXPECT_EQ(r.summary.checkouts.taken, 6u);
  EXPECT_EQ(r.summary.checkouts.returned, 4u);
  EXPECT_EQ(r.summary.checkouts.open, 1u);
  EXPECT_EQ(r.summary.checkouts.leaked, 2u);  // never returned + reclaimed
  for (const Connection& c : r.connections)
    EXPECT_EQ(c.status, c.id <= 3 ? ConnStatus::kPooled : ConnStatus::kLeaked) << c.id;
  ASSERT_EQ(r.checkouts.size(), 2u);
  EXPECT_EQ(r.checkouts[0].id, 4u);
  EXPECT_EQ(r.checkouts[0].status, CheckoutStatus::kReclaimed);
  EXPECT_EQ(r.checkouts[1].status, CheckoutStatus::kLeaked);
  EXPECT_EQ(r.checkouts[1].task, "Task-3");
  ASSERT_EQ(r.pools.size(), 1u);
  EXPECT_EQ(r.pools[0].connections, 3u);
  EXPECT_EQ(r.pools[0].checked_out, 1u);
  // Text: checkouts and the undisposed pool (two idle: one is held).
  std::string text = render_text(r);
  EXPECT_NE(text.find("1 checkout(s) never returned to their pool"), std::string::npos) << text;
  EXPECT_NE(text.find("garbage collector reclaimed"), std::string::npos) << text;
  EXPECT_NE(
      text.find("pool not disposed: 2 idle connection(s) in sqlalchemy.QueuePool sqlalchemy#1"),
      std::string::npos)
      << text;
  EXPECT_NE(text.find("task Task-3"), std::string::npos) << text;
}

TEST(CheckoutReport, InADumpCheckoutsAreOpenAndConnectionsOpen) {
  Fixture f;
  Report r = f.build("request");
  EXPECT_EQ(r.summary.checkouts.leaked, 1u);  // the reclaimed one only
  EXPECT_EQ(r.summary.pooled, 3u);
  for (const Connection& c : r.connections) EXPECT_EQ(c.status, ConnStatus::kOpen);
  EXPECT_EQ(r.checkouts[1].status, CheckoutStatus::kOpen);
}

TEST(CheckoutReport, OnlyPooledIdleConnectionsIsACleanExitWithALowSeverityLine) {
  Fixture f;
  f.snap.open.pop_back();  // no plain leak
  f.checkouts.open.clear();
  f.checkouts.ended.clear();
  f.checkouts.counters = {3, 3, 0};
  Report r = f.build("exit");
  EXPECT_EQ(r.summary.leaked, 0u);
  EXPECT_EQ(r.summary.checkouts.leaked, 0u);
  std::string text = render_text(r);
  EXPECT_NE(text.find("pool not disposed: 3 idle connection(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("connleak: no leaks"), std::string::npos) << text;
  EXPECT_EQ(text.find("SUMMARY"), std::string::npos) << text;
}

TEST(CheckoutReport, JsonRoundTripAndStreamedFormAgree) {
  Fixture f;
  Report r = f.build("exit");
  r.checkouts[1].alerts.push_back({"checkout_held", 1.5});
  r.checkouts[1].in_transaction = true;
  Stacks holder;
  Frame frame;
  frame.function = "copy_files";
  frame.file = "/srv/app/jobs.py";
  frame.line = 12;
  holder.script = std::vector<Frame>{frame};
  r.checkouts[1].holder_now = holder;
  nlohmann::json j = to_json(r);
  EXPECT_EQ(j.at("summary").at("pooled"), 3);
  EXPECT_EQ(j.at("summary").at("checkouts").at("leaked"), 2);
  ASSERT_EQ(j.at("checkouts").size(), 2u);
  const nlohmann::json& c = j.at("checkouts").at(1);
  for (const char* key :
       {"id", "pool", "connection", "status", "checked_out_at", "returned_at", "held_seconds",
        "thread", "task", "in_transaction", "alerts", "acquired", "holder_now"})
    EXPECT_TRUE(c.contains(key)) << key;
  EXPECT_EQ(c.at("holder_now").at("python").at(0).at("user"), true);
  EXPECT_EQ(j.at("pools").at(0).at("kind"), "sqlalchemy.QueuePool");
  EXPECT_EQ(nlohmann::json::parse(to_json_text(r)), j);
  Report back = report_from_json(j);
  EXPECT_EQ(to_json(back), j);
}

TEST(CheckoutReport, MergeTagsPoolsAndCheckoutsWithTheirPid) {
  Fixture f1, f2;
  Report a = f1.build("exit"), b = f2.build("exit");
  b.pid = 200;
  Report m = merge_reports({a, b});
  EXPECT_EQ(m.pools.size(), 2u);
  EXPECT_EQ(m.checkouts.size(), 4u);
  EXPECT_EQ(m.summary.checkouts.leaked, 4u);
  EXPECT_EQ(m.summary.pooled, 6u);
  for (const Checkout& c : m.checkouts) EXPECT_TRUE(c.pid.has_value());
}

}  // namespace
}  // namespace connleak
