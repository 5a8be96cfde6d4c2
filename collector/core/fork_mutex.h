#pragma once
// A mutex that takes part in fork() on its own. Every lock the shim can hold is
// one of these, so no lock can be forgotten at fork (a child forked while
// another thread held a forgotten lock deadlocks on its first connection).
//
// - Constant-initialised: usable from hooks that run before any constructor.
// - Registers itself on first lock(), with a lock-free push onto a global
//   list; the push completes before the mutex is ever held, so a held lock is
//   always on the list.
// - fork_prepare_all() takes every registered lock in list order (a stable
//   order: entries are only ever prepended, never moved), waiting at most a
//   bounded time in total: a lock held by a thread stuck elsewhere, or by the
//   forking thread itself, is skipped rather than hanging the fork (the child
//   then turns the shim off: what that lock guards may be mid-update, see
//   shim/runtime/runtime.cpp). fork_parent_all() releases what it took;
//   fork_child_all() re-initialises every registered lock, since the threads
//   that held them do not exist in the child.
#include <pthread.h>

#include <atomic>
#include <cstddef>
#include <cstdint>

namespace connleak {

class ForkMutex {
 public:
  constexpr ForkMutex() = default;
  // Trivially destructible on purpose: a static lock must stay usable by hooks
  // that run during static destruction. The shim's locks live for the whole
  // process; an owner that is destroyed (test instances of StackDepot or
  // Registry) calls forget() first, to leave the list.
  void forget();
  ForkMutex(const ForkMutex&) = delete;
  ForkMutex& operator=(const ForkMutex&) = delete;

  void lock() {
    ensure_registered();
    pthread_mutex_lock(&mutex_);
  }
  bool try_lock() {
    ensure_registered();
    return pthread_mutex_trylock(&mutex_) == 0;
  }
  void unlock() { pthread_mutex_unlock(&mutex_); }

  // Called by the shim's pthread_atfork handlers (shim/runtime.cpp).
  static void fork_prepare_all();
  static void fork_prepare_all(std::int64_t budget_ns);  // tests: a shorter wait
  static void fork_parent_all();
  static void fork_child_all();
  // Locks registered so far, and how many the last prepare had to skip (the
  // fork child reads it: a skipped lock's tables may be mid-update there).
  static std::size_t registered_count();
  static std::size_t skipped_at_last_fork();

 private:
  enum : std::uint8_t { kUnregistered, kRegistering, kRegistered };

  void ensure_registered() {
    if (state_.load(std::memory_order_acquire) != kRegistered) register_slow();
  }
  void register_slow();

  pthread_mutex_t mutex_ = PTHREAD_MUTEX_INITIALIZER;
  std::atomic<std::uint8_t> state_{kUnregistered};
  bool taken_for_fork_ = false;  // only touched by the forking thread
  ForkMutex* next_ = nullptr;    // written once, before the push publishes it
};

}  // namespace connleak
