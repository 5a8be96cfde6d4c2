#include "collector/policy/watchdog.h"

#include <gtest/gtest.h>

namespace connleak {
namespace {

constexpr std::int64_t kSec = 1'000'000'000;

ConnRecord rec(std::uintptr_t handle, std::int64_t opened_mono) {
  ConnRecord r;
  r.handle = handle;
  r.opened.mono_ns = opened_mono;
  r.open_stack = 0;
  return r;
}

std::int64_t deadline() {
  return mono_now_ns() + 5 * kSec;
}

TEST(TxnState, BeginEndAndFlaggedEnd) {
  LiveConn live;
  int captures = 0;
  auto capture = [&] {
    ++captures;
    return StackId{42};
  };
  EXPECT_FALSE(note_txn_state(live, TxnState::kIdle, capture).began);  // no change: nothing
  TxnChange began = note_txn_state(live, TxnState::kInTransaction, capture);
  EXPECT_TRUE(began.began);
  EXPECT_EQ(live.txn_stack.load(), 42u);
  EXPECT_EQ(live.txn_generation.load(), 1u);
  // Error inside the transaction keeps its start and stack.
  EXPECT_FALSE(note_txn_state(live, TxnState::kInError, capture).began);
  EXPECT_EQ(captures, 1);
  live.txn_alerted = live.txn_generation.load();
  TxnChange ended = note_txn_state(live, TxnState::kIdle, capture);
  EXPECT_TRUE(ended.ended);
  EXPECT_TRUE(ended.ended_flagged);
  note_txn_state(live, TxnState::kInTransaction, capture);
  TxnChange second = note_txn_state(live, TxnState::kIdle, capture);
  EXPECT_TRUE(second.ended);
  EXPECT_FALSE(second.ended_flagged);  // the alert was for the previous transaction
}

TEST(Watchdog, LifetimeAlertsOncePerConnection) {
  Registry reg;
  std::int64_t t0 = 100 * kSec;
  reg.on_open(rec(0x10, t0));
  reg.on_open(rec(0x20, t0 + 5 * kSec));
  Thresholds th{.lifetime_seconds = 10};
  EXPECT_TRUE(watchdog_scan(reg, th, t0 + 9 * kSec, deadline()).alerts.empty());
  auto first = watchdog_scan(reg, th, t0 + 11 * kSec, deadline());
  ASSERT_EQ(first.alerts.size(), 1u);
  EXPECT_EQ(first.alerts[0].record.handle, 0x10u);
  EXPECT_NEAR(first.alerts[0].record.lifetime_alert_after(), 11.0, 1e-6);
  auto second = watchdog_scan(reg, th, t0 + 20 * kSec, deadline());
  ASSERT_EQ(second.alerts.size(), 1u);  // only the younger one, now due
  EXPECT_EQ(second.alerts[0].record.handle, 0x20u);
  EXPECT_TRUE(watchdog_scan(reg, th, t0 + 60 * kSec, deadline()).alerts.empty());
  // The alert is on the record, so it reaches the report even after close.
  ClosedRecord info;
  reg.on_close(0x10, 0, now(), &info);
  EXPECT_EQ(info.record.alerts, kAlertLifetime);
  EXPECT_EQ(reg.snapshot(deadline()).flagged.size(), 1u);
}

TEST(Watchdog, IdleInTransactionOncePerTransaction) {
  Registry reg;
  reg.on_open(rec(0x10, 0));
  LiveConn* live = reg.live_of(0x10);
  ASSERT_NE(live, nullptr);
  Thresholds th{.txn_seconds = 1};
  // An idle pooled connection is never flagged, however old.
  EXPECT_TRUE(watchdog_scan(reg, th, 1000 * kSec, deadline()).alerts.empty());
  note_txn_state(*live, TxnState::kInTransaction, [] { return StackId{7}; });
  std::int64_t began = live->txn_since_mono.load();
  EXPECT_TRUE(watchdog_scan(reg, th, began + kSec / 2, deadline()).alerts.empty());
  auto alert = watchdog_scan(reg, th, began + 2 * kSec, deadline());
  ASSERT_EQ(alert.alerts.size(), 1u);
  EXPECT_EQ(alert.alerts[0].kind, AlertKind::kIdleInTransaction);
  EXPECT_EQ(alert.alerts[0].record.txn_alert_stack, 7u);
  EXPECT_TRUE(watchdog_scan(reg, th, began + 10 * kSec, deadline()).alerts.empty());
  // A new transaction can be flagged again.
  note_txn_state(*live, TxnState::kIdle, [] { return StackId{0}; });
  note_txn_state(*live, TxnState::kInTransaction, [] { return StackId{8}; });
  began = live->txn_since_mono.load();
  ASSERT_EQ(watchdog_scan(reg, th, began + 2 * kSec, deadline()).alerts.size(), 1u);
}

TEST(Watchdog, IgnoredAndInheritedNeverAlert) {
  Registry reg;
  reg.on_open(rec(0x10, 0));
  reg.on_open(rec(0x20, 0));
  ASSERT_TRUE(reg.set_ignored(0x10));
  reg.after_fork_child();  // both are now inherited
  reg.on_open(rec(0x30, 0));
  auto scan = watchdog_scan(reg, {.lifetime_seconds = 1}, 100 * kSec, deadline());
  ASSERT_EQ(scan.alerts.size(), 1u);
  EXPECT_EQ(scan.alerts[0].record.handle, 0x30u);
}

TEST(Watchdog, FloodIsGroupedAndCapped) {
  Registry reg;
  std::uintptr_t frames_a[] = {0x1000, 0x2000};
  std::uintptr_t frames_b[] = {0x3000};
  StackId a = StackDepot::instance().intern(frames_a, 2);
  StackId b = StackDepot::instance().intern(frames_b, 1);
  for (std::uintptr_t i = 1; i <= 1000; ++i) {
    ConnRecord r = rec(i << 4, 0);
    r.open_stack = i <= 990 ? a : b;
    reg.on_open(r);
  }
  Thresholds th{.lifetime_seconds = 1};
  auto scan = watchdog_scan(reg, th, 100 * kSec, deadline());
  ASSERT_EQ(scan.alerts.size(), 1000u);
  Symbolizer sym;
  auto blocks = render_alerts(scan.alerts, th, 100 * kSec, sym, nullptr, 10);
  ASSERT_EQ(blocks.size(), 2u);  // one block per site, largest first
  EXPECT_NE(blocks[0].find("990 connection(s) open for more than 1.0s"), std::string::npos)
      << blocks[0];
  EXPECT_NE(blocks[0].find("... 985 more connection(s) from this site"), std::string::npos)
      << blocks[0];
  auto capped = render_alerts(scan.alerts, th, 100 * kSec, sym, nullptr, 1);
  ASSERT_EQ(capped.size(), 2u);
  EXPECT_NE(capped[1].find("10 more connection(s) crossed a threshold"), std::string::npos)
      << capped[1];
}

}  // namespace
}  // namespace connleak

namespace connleak {
namespace {

// The lifetime round skips shards whose oldest record is young, but a record
// whose open time moves back (update()) and a shard whose young bound was left
// stale by a close are still visited when due.
TEST(Watchdog, LifetimeFloorFollowsUpdatesAndCloses) {
  Registry reg;
  reg.on_open(rec(0x10, 50 * kSec));
  Thresholds th{.lifetime_seconds = 10};
  EXPECT_TRUE(watchdog_scan(reg, th, 55 * kSec, deadline()).alerts.empty());
  ASSERT_TRUE(reg.update(0x10, [](ConnRecord& r) { r.opened.mono_ns = 40 * kSec; }));
  auto moved = watchdog_scan(reg, th, 55 * kSec, deadline());
  ASSERT_EQ(moved.alerts.size(), 1u);
  EXPECT_EQ(moved.alerts[0].record.handle, 0x10u);
  EXPECT_NEAR(moved.alerts[0].record.lifetime_alert_after(), 15.0, 1e-3);
  // Same shard ((handle >> 4) % 64): an old record closed before it was due
  // leaves the bound low; the young one opened after is not flagged early.
  reg.on_open(rec(0x410, 1 * kSec));
  reg.on_close(0x410, 0, now());
  reg.on_open(rec(0x810, 60 * kSec));
  EXPECT_TRUE(watchdog_scan(reg, th, 65 * kSec, deadline()).alerts.empty());
  auto due = watchdog_scan(reg, th, 70 * kSec, deadline());
  ASSERT_EQ(due.alerts.size(), 1u);
  EXPECT_EQ(due.alerts[0].record.handle, 0x810u);
}

// The transaction check finds connections through the LiveConn pool's
// in-transaction bits, which all registries share: a connection of another
// registry is never flagged in this one, and one whose transaction ended is
// not visited.
TEST(Watchdog, TxnCheckSeesOnlyThisRegistrysConnectionsInATransaction) {
  Registry mine, other;
  mine.on_open(rec(0x10, 0));
  mine.on_open(rec(0x20, 0));
  other.on_open(rec(0x30, 0));
  LiveConn* a = mine.live_of(0x10);
  LiveConn* b = mine.live_of(0x20);
  LiveConn* c = other.live_of(0x30);
  ASSERT_TRUE(a && b && c);
  note_txn_state(*a, TxnState::kInTransaction, [] { return StackId{1}; });
  note_txn_state(*b, TxnState::kInTransaction, [] { return StackId{2}; });
  note_txn_state(*b, TxnState::kIdle, [] { return StackId{0}; });  // ended
  note_txn_state(*c, TxnState::kInTransaction, [] { return StackId{3}; });
  Thresholds th{.txn_seconds = 1};
  const std::int64_t later = a->txn_since_mono.load() + 5 * kSec;
  auto scan = watchdog_scan(mine, th, later, deadline());
  ASSERT_EQ(scan.alerts.size(), 1u);
  EXPECT_EQ(scan.alerts[0].record.handle, 0x10u);
  EXPECT_EQ(scan.alerts[0].record.txn_alert_stack, 1u);
  auto theirs = watchdog_scan(other, th, c->txn_since_mono.load() + 5 * kSec, deadline());
  ASSERT_EQ(theirs.alerts.size(), 1u);
  EXPECT_EQ(theirs.alerts[0].record.handle, 0x30u);
  // Closed while in a transaction: its bit is cleared with it; the ended one's was.
  other.on_close(0x30, 0, now());
  int visited_c = 0, visited_b = 0, visited_a = 0;
  live_for_each_in_txn([&](LiveConn& l) {
    visited_a += &l == a;
    visited_b += &l == b;
    visited_c += &l == c;
  });
  EXPECT_EQ(visited_a, 1);
  EXPECT_EQ(visited_b, 0);
  EXPECT_EQ(visited_c, 0);
}

}  // namespace
}  // namespace connleak
