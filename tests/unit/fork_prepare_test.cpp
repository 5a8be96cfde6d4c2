// What fork()'s prepare step does when it cannot get everything: a lock held
// by another thread that never lets go is skipped after the budget, one held
// by the forking thread itself at once, and a loader walk in another thread
// is reported unfinished. The shim's child turns itself off on either
// (shim/runtime/runtime.cpp), so these are the facts it decides on.
#include <gtest/gtest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "collector/core/fork_gate.h"
#include "collector/core/fork_mutex.h"

namespace connleak {
namespace {

constexpr std::int64_t kShortBudgetNs = 20'000'000;

// Holds `m` on its own thread until release() (no sleep: a condition variable).
class Holder {
 public:
  explicit Holder(ForkMutex& m)
      : thread_([this, &m] {
          m.lock();
          {
            std::unique_lock<std::mutex> lk(mu_);
            holding_ = true;
            cv_.notify_all();
            cv_.wait(lk, [this] { return released_; });
          }
          m.unlock();
        }) {
    std::unique_lock<std::mutex> lk(mu_);
    cv_.wait(lk, [this] { return holding_; });
  }
  void release() {
    {
      std::lock_guard<std::mutex> lk(mu_);
      released_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool holding_ = false, released_ = false;
  std::thread thread_;
};

TEST(ForkPrepare, LockHeldByAnotherThreadIsSkippedAfterTheBudgetAndTheRestAreTaken) {
  static ForkMutex held, free_lock;
  free_lock.lock();  // registers it
  free_lock.unlock();
  Holder holder(held);
  ForkMutex::fork_prepare_all(kShortBudgetNs);
  EXPECT_EQ(ForkMutex::skipped_at_last_fork(), 1u);
  EXPECT_FALSE(free_lock.try_lock());  // taken by prepare, as fork() needs
  ForkMutex::fork_parent_all();
  EXPECT_TRUE(free_lock.try_lock());  // released again in the parent
  free_lock.unlock();
  holder.release();
  // Canary: with nothing held, nothing is skipped.
  ForkMutex::fork_prepare_all(kShortBudgetNs);
  EXPECT_EQ(ForkMutex::skipped_at_last_fork(), 0u);
  ForkMutex::fork_parent_all();
}

TEST(ForkPrepare, LockHeldByTheForkingThreadItselfIsSkippedWithoutWaitingTheBudget) {
  static ForkMutex mine;
  mine.lock();
  // A budget no test would sit through: only the owner check lets it return.
  ForkMutex::fork_prepare_all(3'600'000'000'000LL);
  EXPECT_EQ(ForkMutex::skipped_at_last_fork(), 1u);
  ForkMutex::fork_parent_all();
  mine.unlock();
  EXPECT_TRUE(mine.try_lock());  // prepare did not unlock what it never took
  mine.unlock();
}

TEST(ForkPrepare, OwnWalkIsNotWaitedForButAnotherThreadsWalkIsReportedUnfinished) {
  {
    fork_gate::Walk mine;  // fork() from a handler that interrupted our own walk
    EXPECT_TRUE(fork_gate::prepare(3'600'000'000'000LL));
    EXPECT_TRUE(fork_gate::walks_finished_at_last_fork());
    fork_gate::parent();
  }
  std::mutex mu;
  std::condition_variable cv;
  bool walking = false, done = false;
  std::thread other([&] {
    fork_gate::Walk walk;
    std::unique_lock<std::mutex> lk(mu);
    walking = true;
    cv.notify_all();
    cv.wait(lk, [&] { return done; });
  });
  {
    std::unique_lock<std::mutex> lk(mu);
    cv.wait(lk, [&] { return walking; });
  }
  EXPECT_FALSE(fork_gate::prepare(kShortBudgetNs));
  EXPECT_FALSE(fork_gate::walks_finished_at_last_fork());
  fork_gate::parent();
  {
    std::lock_guard<std::mutex> lk(mu);
    done = true;
  }
  cv.notify_all();
  other.join();
  EXPECT_TRUE(fork_gate::prepare(kShortBudgetNs));  // canary: nobody walking now
  fork_gate::parent();
}

}  // namespace
}  // namespace connleak
