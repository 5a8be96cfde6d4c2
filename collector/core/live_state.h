#pragma once
// Per-connection state that hooks update on the query hot path without taking
// a lock: the transaction state, when the transaction began and where. Each
// record owns one LiveConn. LiveConns come from a type-stable pool (memory is
// recycled, never returned to malloc), so a stale pointer in a thread-local
// cache still points at a LiveConn: comparing `handle` tells if it is current.
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "collector/activity/activity.h"
#include "collector/core/stack_depot.h"
#include "collector/util/timeutil.h"

namespace connleak {

enum class TxnState : std::uint8_t { kIdle = 0, kInTransaction = 1, kInError = 2, kUnknown = 3 };
const char* txn_state_name(TxnState s);

struct LiveConn {
  std::atomic<std::uintptr_t> handle{0};    // 0 while free
  std::atomic<std::uint64_t> record_id{0};  // for follow-up messages from hooks
  std::atomic<std::uint8_t> txn{static_cast<std::uint8_t>(TxnState::kIdle)};
  std::atomic<std::int64_t> txn_since_mono{0};
  std::atomic<StackId> txn_stack{0};
  std::atomic<StackId> txn_py_stack{
      0};  // script_depot(); set by the hook when a transaction begins
  std::atomic<std::uint32_t> txn_generation{0};  // +1 for each transaction begun
  std::atomic<std::uint32_t> txn_alerted{0};     // generation the watchdog alerted on
  std::atomic<bool> txn_known{false};            // a state was read at least once
  std::atomic<std::int64_t> idle_alerted{
      0};                         // idle_threshold: the idle period alerted on (its start)
  activity::Activity activity;    // statements sent (option statements)
  LiveConn* next_free = nullptr;  // guarded by the pool mutex
};

LiveConn* live_alloc(std::uintptr_t handle);
void live_free(LiveConn* live);
// The connection is closed but a report still shows it (leaked at exit,
// flagged): detaches `live` from its handle, so no hook writes it again, and
// never recycles it (its activity is read at report time). The memory stays
// in the type-stable pool's chunks.
void live_retire(LiveConn* live);

// What a transaction-state change means for the caller.
struct TxnChange {
  bool began = false;          // a new transaction started (capture its stack)
  bool ended = false;          // a transaction ended
  bool ended_flagged = false;  // ... and the watchdog had alerted on it
  double lasted_seconds = 0;   // for an ended transaction
};

// Applies the state observed after a command. Lock-free and allocation-free;
// `capture` (returning a StackId) is called only when a transaction begins.
template <typename Capture>
TxnChange note_txn_state(LiveConn& live, TxnState now, Capture&& capture) {
  TxnChange change;
  if (!live.txn_known.load(std::memory_order_relaxed))
    live.txn_known.store(true, std::memory_order_relaxed);
  auto old = static_cast<TxnState>(live.txn.load(std::memory_order_relaxed));
  if (old == now) return change;  // the hot path: nothing changed, no clock read
  const std::int64_t now_mono = mono_now_ns();
  bool was_in = old == TxnState::kInTransaction || old == TxnState::kInError;
  bool is_in = now == TxnState::kInTransaction || now == TxnState::kInError;
  if (is_in && !was_in) {
    live.txn_stack.store(capture(), std::memory_order_relaxed);
    live.txn_since_mono.store(now_mono, std::memory_order_relaxed);
    live.txn_generation.fetch_add(1, std::memory_order_relaxed);
    change.began = true;
  } else if (was_in && !is_in) {
    change.ended = true;
    std::uint32_t gen = live.txn_generation.load(std::memory_order_relaxed);
    change.ended_flagged = live.txn_alerted.load(std::memory_order_relaxed) == gen && gen != 0;
    change.lasted_seconds =
        static_cast<double>(now_mono - live.txn_since_mono.load(std::memory_order_relaxed)) / 1e9;
  }
  live.txn.store(static_cast<std::uint8_t>(now), std::memory_order_release);
  return change;
}

}  // namespace connleak
