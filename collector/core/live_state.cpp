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
// A free LiveConn's record_id holds the next free one (see live_state.h).
LiveConn* next_free(LiveConn* live) {
  return reinterpret_cast<LiveConn*>(live->record_id.load(std::memory_order_relaxed));
}
void set_next_free(LiveConn* live, LiveConn* next) {
  live->record_id.store(reinterpret_cast<std::uintptr_t>(next), std::memory_order_relaxed);
}

struct Pool {
  ForkMutex mutex;
  LiveConn* free_list = nullptr;
  std::atomic<LiveChunkHeader*> chunks{nullptr};  // newest first, for the watchdog
};
Pool& pool() {
  Pool& p = fork_safe_static([] { return new Pool; });  // never destroyed: hooks run during exit
  return p;
}

// A chunk is never freed: type-stable memory for lock-free readers.
bool add_chunk(Pool& p) {
  void* mem = std::aligned_alloc(LiveChunkHeader::kBytes, LiveChunkHeader::kBytes);
  if (!mem) return false;
  auto* chunk = new (mem) LiveChunkHeader;
  for (auto& word : chunk->in_txn) word.store(0, std::memory_order_relaxed);
  for (std::size_t i = LiveChunkHeader::kConns; i-- > 0;) {
    LiveConn* live = new (&chunk->conns()[i]) LiveConn;
    live->pooled = true;
    set_next_free(live, p.free_list);
    p.free_list = live;
  }
  chunk->next = p.chunks.load(std::memory_order_relaxed);
  p.chunks.store(chunk, std::memory_order_release);
  return true;
}

// Activity blocks, the same way: chunks never freed, so a hook holding a
// stale pointer writes into a block that is still an Activity.
struct ActivityPool {
  ForkMutex mutex;
  activity::Activity* free_list = nullptr;
};
ActivityPool& activity_pool() {
  return fork_safe_static([] { return new ActivityPool; });  // never destroyed
}
constexpr std::size_t kActivityChunk = 256;
activity::Activity*& next_free_of(activity::Activity* a) {
  return a->pool_next;
}

activity::Activity* activity_alloc() {
  ActivityPool& p = activity_pool();
  activity::Activity* a = nullptr;
  {
    std::lock_guard<ForkMutex> lock(p.mutex);
    if (!p.free_list) {
      void* mem = std::calloc(kActivityChunk, sizeof(activity::Activity));
      if (!mem) return nullptr;
      auto* chunk = static_cast<activity::Activity*>(mem);
      for (std::size_t i = 0; i < kActivityChunk; ++i) {
        new (&chunk[i]) activity::Activity;
        next_free_of(&chunk[i]) = p.free_list;
        p.free_list = &chunk[i];
      }
    }
    a = p.free_list;
    p.free_list = next_free_of(a);
  }
  a->reset();
  return a;
}

void activity_free(activity::Activity* a) {
  if (!a) return;
  ActivityPool& p = activity_pool();
  std::lock_guard<ForkMutex> lock(p.mutex);
  next_free_of(a) = p.free_list;
  p.free_list = a;
}
}  // namespace

namespace detail {
LiveChunkHeader* live_chunks() {
  return pool().chunks.load(std::memory_order_acquire);
}

activity::Activity* live_activity_first(LiveConn& live) {
  activity::Activity* fresh = activity_alloc();
  if (!fresh) return nullptr;
  activity::Activity* expected = nullptr;
  // Two threads on one handle at once (a misuse): one block wins.
  if (live.activity.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel,
                                            std::memory_order_acquire))
    return fresh;
  activity_free(fresh);
  return expected;
}
}  // namespace detail

LiveConn* live_alloc(std::uintptr_t handle) {
  Pool& p = pool();
  LiveConn* live = nullptr;
  {
    std::lock_guard<ForkMutex> lock(p.mutex);
    if (!p.free_list && !add_chunk(p)) return nullptr;
    live = p.free_list;
    p.free_list = next_free(live);
  }
  live->record_id.store(0, std::memory_order_relaxed);
  detail::mark_in_txn(*live, false);
  live->txn.store(static_cast<std::uint8_t>(TxnState::kIdle), std::memory_order_relaxed);
  live->txn_since_mono.store(0, std::memory_order_relaxed);
  live->txn_stack.store(0, std::memory_order_relaxed);
  live->txn_py_stack.store(0, std::memory_order_relaxed);
  live->txn_alerted.store(0, std::memory_order_relaxed);
  live->txn_known.store(false, std::memory_order_relaxed);
  live->idle_alerted.store(0, std::memory_order_relaxed);
  // Normally null (live_free returned it); a hook still holding this LiveConn
  // across its close may have attached one since.
  activity_free(live->activity.exchange(nullptr, std::memory_order_acq_rel));
  live->handle.store(handle, std::memory_order_release);
  return live;
}

void live_retire(LiveConn* live) {
  if (!live) return;
  live->handle.store(0, std::memory_order_release);
  detail::mark_in_txn(*live, false);  // the watchdog is done with it
}

void live_free(LiveConn* live) {
  if (!live) return;
  live->handle.store(0, std::memory_order_release);
  detail::mark_in_txn(*live, false);
  activity_free(live->activity.exchange(nullptr, std::memory_order_acq_rel));
  Pool& p = pool();
  std::lock_guard<ForkMutex> lock(p.mutex);
  set_next_free(live, p.free_list);
  p.free_list = live;
}

}  // namespace connleak
