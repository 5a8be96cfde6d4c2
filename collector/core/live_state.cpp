#include "collector/core/live_state.h"

#include <cstdlib>
#include <new>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"

namespace connleak {

const char* txn_state_name(TxnState s) {
  switch (s) {
    case TxnState::kIdle:
      return "idle";
    case TxnState::kInTransaction:
      return "in_transaction";
    case TxnState::kInError:
      return "in_error";
    case TxnState::kUnknown:
      return "unknown";
  }
  return "unknown";
}

namespace {
struct Pool {
  ForkMutex mutex;
  LiveConn* free_list = nullptr;
};
Pool& pool() {
  Pool& p = fork_safe_static([] { return new Pool; });  // never destroyed: hooks run during exit
  return p;
}
constexpr std::size_t kChunk = 512;
}  // namespace

LiveConn* live_alloc(std::uintptr_t handle) {
  Pool& p = pool();
  LiveConn* live = nullptr;
  {
    std::lock_guard<ForkMutex> lock(p.mutex);
    if (!p.free_list) {
      // A chunk is never freed: type-stable memory for lock-free readers.
      void* mem = std::calloc(kChunk, sizeof(LiveConn));
      if (!mem) return nullptr;
      auto* chunk = static_cast<LiveConn*>(mem);
      for (std::size_t i = 0; i < kChunk; ++i) {
        new (&chunk[i]) LiveConn;
        chunk[i].next_free = p.free_list;
        p.free_list = &chunk[i];
      }
    }
    live = p.free_list;
    p.free_list = live->next_free;
  }
  live->txn.store(static_cast<std::uint8_t>(TxnState::kIdle), std::memory_order_relaxed);
  live->txn_since_mono.store(0, std::memory_order_relaxed);
  live->txn_stack.store(0, std::memory_order_relaxed);
  live->txn_py_stack.store(0, std::memory_order_relaxed);
  live->txn_alerted.store(0, std::memory_order_relaxed);
  live->txn_known.store(false, std::memory_order_relaxed);
  live->idle_alerted.store(0, std::memory_order_relaxed);
  live->activity.reset();
  live->handle.store(handle, std::memory_order_release);
  return live;
}

void live_retire(LiveConn* live) {
  if (live) live->handle.store(0, std::memory_order_release);
}

void live_free(LiveConn* live) {
  if (!live) return;
  live->handle.store(0, std::memory_order_release);
  Pool& p = pool();
  std::lock_guard<ForkMutex> lock(p.mutex);
  live->next_free = p.free_list;
  p.free_list = live;
}

}  // namespace connleak
