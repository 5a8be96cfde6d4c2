#pragma once
// A never-destroyed singleton built on first use, safe against fork().
//
// Why not `static T& t = *new T;`: while one thread builds it, the C++ runtime
// holds that static's initialisation guard; a fork() from another thread in
// that instant gives the child a guard marked "in progress" by a thread that
// does not exist there, and the child's first connection waits on it forever
// (ForkSafety.ChildrenForkedDuringConnectStormConnectAndExit caught a child
// hung in __cxa_guard_acquire under StackDepot::instance). Here the build runs
// under a ForkMutex, which fork() takes first (fork_mutex.h): a child inherits
// either no object or a whole one.
//
//   Registry& r = fork_safe_static([] { return new Registry; });
//
// Each lambda is its own type, so each call site gets its own object.
#include <atomic>
#include <mutex>
#include <type_traits>
#include <utility>

#include "collector/core/fork_mutex.h"

namespace connleak {

template <typename Make>
struct ForkSafeSlot {
  using T = std::remove_pointer_t<decltype(std::declval<Make>()())>;
  static constinit inline std::atomic<T*> slot{nullptr};
  static constinit inline ForkMutex mutex;
};

template <typename Make>
auto& fork_safe_static(Make make) {
  using Slot = ForkSafeSlot<Make>;
  auto* p = Slot::slot.load(std::memory_order_acquire);
  if (__builtin_expect(p != nullptr, 1)) return *p;
  std::lock_guard<ForkMutex> lock(Slot::mutex);
  p = Slot::slot.load(std::memory_order_relaxed);
  if (!p) {
    p = make();
    Slot::slot.store(p, std::memory_order_release);
  }
  return *p;
}

// The object fork_safe_static(make) built, or null when nothing asked for it
// yet; never builds it. For the exit path of a process that never connected:
// building a table only to find it empty costs more than the whole program.
// `make` must be the same lambda object (same type) the builder uses.
template <typename Make>
auto* fork_safe_static_if_built(const Make&) {
  return ForkSafeSlot<Make>::slot.load(std::memory_order_acquire);
}

}  // namespace connleak
