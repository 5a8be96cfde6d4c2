#include "collector/core/fork_mutex.h"

#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>

#include "collector/util/timeutil.h"

namespace connleak {

namespace {

// Constant-initialised head of the registered locks; only ever pushed onto.
constinit std::atomic<ForkMutex*> g_head{nullptr};
constinit std::atomic<std::size_t> g_count{0};
constinit std::size_t g_skipped = 0;
// Serialises unlinking (test-only destruction); pushes stay lock-free.
constinit std::atomic_flag g_unlinking = ATOMIC_FLAG_INIT;

// A holder that is running lets go within microseconds, but on a loaded
// machine it may wait its turn for a core for longer than the 100 ms this
// budget used to be (a 2-core machine at load 20 hands each runnable thread a
// slice every ~75 ms), and a child forked past a skipped lock gets that
// lock's table mid-update. Only a holder stuck for good, e.g. blocked on a
// lock the forking thread holds, uses up the budget.
constexpr std::int64_t kPrepareBudgetNs = 2'000'000'000;

}  // namespace

void ForkMutex::register_slow() {
  std::uint8_t expected = kUnregistered;
  if (state_.compare_exchange_strong(expected, kRegistering, std::memory_order_acq_rel)) {
    next_ = g_head.load(std::memory_order_relaxed);
    while (!g_head.compare_exchange_weak(next_, this, std::memory_order_release,
                                         std::memory_order_relaxed)) {
    }
    g_count.fetch_add(1, std::memory_order_relaxed);
    state_.store(kRegistered, std::memory_order_release);
    return;
  }
  // Another thread is pushing this lock: it must be on the list before anyone
  // holds it, so wait for the push (a handful of instructions).
  while (state_.load(std::memory_order_acquire) != kRegistered) sched_yield();
}

void ForkMutex::forget() {
  if (state_.load(std::memory_order_acquire) != kRegistered) return;
  while (g_unlinking.test_and_set(std::memory_order_acquire)) sched_yield();
  ForkMutex* self = this;
  if (!g_head.compare_exchange_strong(self, next_, std::memory_order_acq_rel)) {
    // Not the head: someone pushed after us, and only unlinkers edit `next_`.
    for (ForkMutex* m = g_head.load(std::memory_order_acquire); m; m = m->next_) {
      if (m->next_ == this) {
        m->next_ = next_;
        break;
      }
    }
  }
  g_count.fetch_sub(1, std::memory_order_relaxed);
  state_.store(kUnregistered, std::memory_order_release);
  g_unlinking.clear(std::memory_order_release);
}

void ForkMutex::fork_prepare_all() {
  fork_prepare_all(kPrepareBudgetNs);
}

void ForkMutex::fork_prepare_all(std::int64_t budget_ns) {
  std::int64_t deadline = mono_now_ns() + budget_ns;
  // glibc records the holder's tid in every mutex it locks: a lock held by the
  // forking thread itself (fork() from a signal handler that interrupted one
  // of our sections) will never be released while we wait, so it is skipped
  // at once instead of after the budget.
  const int self = static_cast<int>(syscall(SYS_gettid));
  std::size_t skipped = 0;
  for (ForkMutex* m = g_head.load(std::memory_order_acquire); m; m = m->next_) {
    while (!(m->taken_for_fork_ = pthread_mutex_trylock(&m->mutex_) == 0) &&
           __atomic_load_n(&m->mutex_.__data.__owner, __ATOMIC_RELAXED) != self &&
           mono_now_ns() < deadline)
      sched_yield();
    if (!m->taken_for_fork_) ++skipped;
  }
  g_skipped = skipped;
}

void ForkMutex::fork_parent_all() {
  for (ForkMutex* m = g_head.load(std::memory_order_acquire); m; m = m->next_) {
    if (m->taken_for_fork_) pthread_mutex_unlock(&m->mutex_);
    m->taken_for_fork_ = false;
  }
}

void ForkMutex::fork_child_all() {
  // Also covers a lock first used by another thread after prepare walked the
  // list: its push completed before it was locked, so it is on the list here.
  for (ForkMutex* m = g_head.load(std::memory_order_acquire); m; m = m->next_) {
    pthread_mutex_t fresh = PTHREAD_MUTEX_INITIALIZER;
    m->mutex_ = fresh;
    m->taken_for_fork_ = false;
  }
}

std::size_t ForkMutex::registered_count() {
  return g_count.load(std::memory_order_relaxed);
}
std::size_t ForkMutex::skipped_at_last_fork() {
  return g_skipped;
}

}  // namespace connleak
