#include "collector/core/registry.h"

#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <thread>
#include <vector>

namespace connleak {
namespace {

ConnRecord rec(std::uintptr_t handle, StackId stack = 1) {
  ConnRecord r;
  r.handle = handle;
  r.open_stack = stack;
  r.opened = now();
  r.target = "host=x";
  return r;
}

std::int64_t far_deadline() {
  return mono_now_ns() + 5'000'000'000LL;
}

TEST(Registry, OpenCloseLeak) {
  Registry reg;
  reg.on_open(rec(0x100));
  reg.on_open(rec(0x200));
  EXPECT_EQ(reg.on_close(0x100, 2, now()), CloseOutcome::kClosed);
  Snapshot s = reg.snapshot(far_deadline());
  ASSERT_EQ(s.open.size(), 1u);
  EXPECT_EQ(s.open[0].handle, 0x200u);
  EXPECT_EQ(s.counters.opened, 2u);
  EXPECT_EQ(s.counters.closed, 1u);
  EXPECT_EQ(reg.open_count(), 1u);
  EXPECT_TRUE(s.complete);
}

TEST(Registry, DoubleCloseKeepsBothStacks) {
  Registry reg;
  reg.on_open(rec(0x100, 7));
  EXPECT_EQ(reg.on_close(0x100, 8, now()), CloseOutcome::kClosed);
  ClosedRecord again;
  EXPECT_EQ(reg.on_close(0x100, 9, now(), &again), CloseOutcome::kDoubleClose);
  EXPECT_TRUE(again.double_close);
  EXPECT_EQ(again.record.open_stack, 7u);
  EXPECT_EQ(again.close_stack, 8u);
  EXPECT_EQ(again.close_again_stack, 9u);
  Snapshot s = reg.snapshot(far_deadline());
  EXPECT_EQ(s.counters.double_closes, 1u);
  ASSERT_EQ(s.flagged.size(), 1u);
  EXPECT_EQ(s.counters.closed, 1u);
}

TEST(Registry, ReusedAddressIsNotADoubleClose) {
  Registry reg;
  reg.on_open(rec(0x100));
  reg.on_close(0x100, 0, now());
  reg.on_open(rec(0x100));  // malloc handed the same address to a new connection
  EXPECT_EQ(reg.on_close(0x100, 0, now()), CloseOutcome::kClosed);
  EXPECT_EQ(reg.counters().double_closes, 0u);
}

// malloc often hands a freed connection's address to the next one: a pool
// that churns connections reuses a handful of addresses thousands of times.
// The double close of the last one is still caught (the recently-closed FIFO
// once filled with stale copies of the one address and then evicted its live
// entry, after 1,024 reuses).
TEST(Registry, DoubleCloseCaughtAfterThousandsOfReusesOfOneAddress) {
  Registry reg;
  for (int i = 0; i < 3000; ++i) {
    reg.on_open(rec(0x100, 7));
    ASSERT_EQ(reg.on_close(0x100, 8, now()), CloseOutcome::kClosed) << i;
  }
  ClosedRecord again;
  EXPECT_EQ(reg.on_close(0x100, 9, now(), &again), CloseOutcome::kDoubleClose);
  EXPECT_EQ(again.close_stack, 8u);
  EXPECT_EQ(again.close_again_stack, 9u);
  EXPECT_EQ(reg.counters().closed, 3000u);
  EXPECT_EQ(reg.counters().double_closes, 1u);
}

// The memory of closed handles is bounded (1,024 per shard): the oldest are
// forgotten (a close of them again is "unknown"), the newest still caught.
TEST(Registry, RecentlyClosedForgetsTheOldestOfOneShard) {
  Registry reg;
  // Addresses 1 KiB apart share a shard: (handle >> 4) % 64 is the same.
  auto handle = [](int i) { return static_cast<std::uintptr_t>(0x10000 + i * 1024); };
  const int n = 1100;
  for (int i = 0; i < n; ++i) reg.on_open(rec(handle(i)));
  for (int i = 0; i < n; ++i) ASSERT_EQ(reg.on_close(handle(i), 0, now()), CloseOutcome::kClosed);
  EXPECT_EQ(reg.on_close(handle(0), 0, now()), CloseOutcome::kUnknown);
  EXPECT_EQ(reg.on_close(handle(n - 1024 - 1), 0, now()), CloseOutcome::kUnknown);
  EXPECT_EQ(reg.on_close(handle(n - 1024), 0, now()), CloseOutcome::kDoubleClose);
  EXPECT_EQ(reg.on_close(handle(n - 1), 0, now()), CloseOutcome::kDoubleClose);
  // Reopened and closed again: remembered once more, with the new close.
  reg.on_open(rec(handle(0), 5));
  EXPECT_EQ(reg.on_close(handle(0), 6, now()), CloseOutcome::kClosed);
  ClosedRecord again;
  EXPECT_EQ(reg.on_close(handle(0), 0, now(), &again), CloseOutcome::kDoubleClose);
  EXPECT_EQ(again.record.open_stack, 5u);
  EXPECT_EQ(again.close_stack, 6u);
}

TEST(Registry, UnknownCloseIsCounted) {
  Registry reg;
  EXPECT_EQ(reg.on_close(0xdead, 0, now()), CloseOutcome::kUnknown);
  EXPECT_EQ(reg.counters().unknown_closes, 1u);
}

TEST(Registry, ResetCountsOnlyKnownHandles) {
  Registry reg;
  reg.on_open(rec(0x100));
  EXPECT_TRUE(reg.on_reset(0x100));
  EXPECT_TRUE(reg.on_reset(0x100));
  EXPECT_FALSE(reg.on_reset(0x999));
  Snapshot s = reg.snapshot(far_deadline());
  EXPECT_EQ(s.open.at(0).resets, 2u);
  EXPECT_EQ(s.counters.resets, 2u);
}

TEST(Registry, ForkChildMarksInheritedAndZeroesCounters) {
  Registry reg;
  reg.on_open(rec(0x100));
  reg.after_fork_child();
  Snapshot s = reg.snapshot(far_deadline());
  ASSERT_EQ(s.open.size(), 1u);
  EXPECT_TRUE(s.open[0].inherited);
  EXPECT_EQ(s.counters.opened, 0u);
}

// A shard held by a stuck thread must not hang the snapshot (the exit path).
TEST(Registry, SnapshotGivesUpOnAStuckLockAtTheDeadline) {
  Registry reg;
  reg.on_open(rec(0x100));
  // Another thread sits inside update() on the record's shard, holding its
  // lock (the registry's locks are ForkMutexes now, not listed for tests).
  std::mutex gate;
  std::condition_variable cv;
  bool held = false, release = false;
  // Another thread holds the record's shard lock: update() runs its callback
  // under it, and the callback waits until the test lets it go.
  std::thread holder([&] {
    reg.update(0x100, [&](ConnRecord&) {
      std::unique_lock<std::mutex> lk(gate);
      held = true;
      cv.notify_all();
      cv.wait(lk, [&] { return release; });
    });
  });
  {
    std::unique_lock<std::mutex> lk(gate);
    cv.wait(lk, [&] { return held; });
  }
  Snapshot s = reg.snapshot(mono_now_ns() + 20'000'000);
  EXPECT_FALSE(s.complete);
  {
    std::lock_guard<std::mutex> lk(gate);
    release = true;
  }
  cv.notify_all();
  holder.join();
  EXPECT_TRUE(reg.snapshot(far_deadline()).complete);
}

TEST(Registry, ManyThreadsOpenAndCloseExactly) {
  Registry reg;
  constexpr int kThreads = 16, kRounds = 2000;
  std::vector<std::thread> threads;
  std::atomic<bool> go{false};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      while (!go.load()) std::this_thread::yield();
      for (int i = 0; i < kRounds; ++i) {
        std::uintptr_t h =
            (static_cast<std::uintptr_t>(t) << 32) | (static_cast<std::uintptr_t>(i) << 4);
        reg.on_open(rec(h));
        if (i % 100 != 0) {
          EXPECT_EQ(reg.on_close(h, 0, now()), CloseOutcome::kClosed);
        }
      }
    });
  }
  // A reader taking snapshots concurrently (the watchdog / a dump).
  std::thread reader([&] {
    while (!go.load()) std::this_thread::yield();
    for (int i = 0; i < 50; ++i) (void)reg.snapshot(far_deadline());
  });
  go = true;
  for (auto& th : threads) th.join();
  reader.join();
  Snapshot s = reg.snapshot(far_deadline());
  EXPECT_EQ(s.counters.opened, static_cast<std::uint64_t>(kThreads * kRounds));
  EXPECT_EQ(s.open.size(), static_cast<std::size_t>(kThreads * kRounds / 100));
  EXPECT_EQ(reg.open_count(), s.open.size());
  EXPECT_EQ(s.counters.closed + s.open.size(), s.counters.opened);
}

}  // namespace
}  // namespace connleak

namespace connleak {
namespace {

// The activity block is made at a connection's first statement, not at its
// open, and goes back to the pool at its close: a connection that never
// sends one carries no block.
TEST(Registry, ActivityBlockIsMadeAtTheFirstStatementAndReturnedAtClose) {
  Registry reg;
  ConnRecord r;
  r.handle = 0x4240;
  reg.on_open(r);
  LiveConn* live = reg.live_of(0x4240);
  ASSERT_NE(live, nullptr);
  EXPECT_EQ(live_activity_if(*live), nullptr);
  note_live_result(*live, false);  // nothing running: still nothing to record
  EXPECT_EQ(live_activity_if(*live), nullptr);
  activity::Activity* a = live_activity(*live);
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(live_activity(*live), a);  // made once
  activity::note_statement(*a, "SELECT 1", static_cast<std::size_t>(-1),
                           activity::Dialect::kPostgres);
  activity::ActivityView view;
  ASSERT_TRUE(activity::read_activity(*live_activity_if(*live), view));
  EXPECT_EQ(view.statements, 1u);
  reg.on_close(0x4240, 0, now());
  EXPECT_EQ(live_activity_if(*live), nullptr);  // back in the pool with the LiveConn
  // The next connection starts without one (and without the old text).
  r.handle = 0x4250;
  reg.on_open(r);
  LiveConn* next = reg.live_of(0x4250);
  ASSERT_NE(next, nullptr);
  EXPECT_EQ(live_activity_if(*next), nullptr);
  activity::Activity* b = live_activity(*next);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->statements.load(), 0u);
  EXPECT_FALSE(activity::read_activity(*b, view));
}

// A closed record the report shows keeps its block (retired, not recycled).
TEST(Registry, FlaggedCloseKeepsTheActivityBlock) {
  Registry reg;
  ConnRecord r;
  r.handle = 0x4260;
  reg.on_open(r);
  LiveConn* live = reg.live_of(0x4260);
  ASSERT_NE(live, nullptr);
  activity::note_statement(*live_activity(*live), "SELECT * FROM t WHERE id = 42",
                           static_cast<std::size_t>(-1), activity::Dialect::kPostgres);
  ASSERT_TRUE(reg.update(0x4260, [](ConnRecord& rec) { rec.alerts |= kAlertLifetime; }));
  ClosedRecord info;
  reg.on_close(0x4260, 0, now(), &info);
  ASSERT_NE(info.activity, nullptr);
  const activity::Activity* kept = live_activity_if(*info.activity);
  ASSERT_NE(kept, nullptr);
  activity::ActivityView view;
  ASSERT_TRUE(activity::read_activity(*kept, view));
  EXPECT_EQ(view.last_statement, "SELECT * FROM t WHERE id = ?");
}

}  // namespace
}  // namespace connleak
