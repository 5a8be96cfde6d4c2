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

// One cache line: the watchdog reads it for every connection in a
// transaction, and 100,000 of them stay in a few MB.
struct alignas(64) LiveConn {
  std::atomic<std::uintptr_t> handle{0};  // 0 while free
  // For follow-up messages from hooks. While the LiveConn is free, the pool's
  // free-list link (hooks only read it; a stale reader gets a meaningless id).
  std::atomic<std::uint64_t> record_id{0};
  std::atomic<std::int64_t> txn_since_mono{0};
  std::atomic<std::int64_t> idle_alerted{
      0};  // idle_threshold: the idle period alerted on (its start)
  // Statements sent (option statements): made at the connection's first
  // statement (live_activity), so a connection that never sends one, or a
  // process with statements=0, carries a pointer instead of ~450 bytes. From
  // a type-stable pool like LiveConns; returned to it by live_free.
  std::atomic<activity::Activity*> activity{nullptr};
  std::atomic<StackId> txn_stack{0};
  std::atomic<StackId> txn_py_stack{
      0};  // script_depot(); set by the hook when a transaction begins
  std::atomic<std::uint32_t> txn_generation{0};  // +1 for each transaction begun
  std::atomic<std::uint32_t> txn_alerted{0};     // generation the watchdog alerted on
  std::atomic<std::uint8_t> txn{static_cast<std::uint8_t>(TxnState::kIdle)};
  std::atomic<bool> txn_known{false};  // a state was read at least once
  bool pooled = false;                 // in a LiveChunk (set once; false: a test's own)
};
static_assert(sizeof(LiveConn) == 64, "one cache line");

// LiveConns live in chunks aligned to their size, never freed. A chunk's
// header has one bit per LiveConn that is in a transaction, set and cleared
// by note_txn_state on its edges: the watchdog's transaction and idle checks
// read the bits (1.6 KB for 100,000 connections) and visit only those
// connections, instead of every record's LiveConn.
struct alignas(64) LiveChunkHeader {
  static constexpr std::size_t kBytes = 32768;
  static constexpr std::size_t kConns = kBytes / sizeof(LiveConn) - 2;  // two header lines
  std::atomic<std::uint64_t> in_txn[8];                                 // bit i: conns()[i]
  LiveChunkHeader* next = nullptr;  // older chunk; the list only grows
  LiveConn* conns() { return reinterpret_cast<LiveConn*>(reinterpret_cast<char*>(this) + 128); }
};
static_assert(sizeof(LiveChunkHeader) == 128 && LiveChunkHeader::kConns <= 512);

namespace detail {
inline void mark_in_txn(LiveConn& live, bool in) {
  if (!live.pooled) return;
  const auto addr = reinterpret_cast<std::uintptr_t>(&live);
  const auto base = addr & ~static_cast<std::uintptr_t>(LiveChunkHeader::kBytes - 1);
  const std::size_t slot = (addr - base - sizeof(LiveChunkHeader)) / sizeof(LiveConn);
  auto& word = reinterpret_cast<LiveChunkHeader*>(base)->in_txn[slot / 64];
  const std::uint64_t bit = std::uint64_t{1} << (slot % 64);
  if (in)
    word.fetch_or(bit, std::memory_order_release);
  else
    word.fetch_and(~bit, std::memory_order_release);
}
LiveChunkHeader* live_chunks();  // newest first
}  // namespace detail

// Calls fn(LiveConn&) for every pooled LiveConn whose bit says it is in a
// transaction (it may have ended since: fn reads the state again). Lock-free.
template <typename Fn>
void live_for_each_in_txn(Fn&& fn) {
  for (LiveChunkHeader* c = detail::live_chunks(); c; c = c->next) {
    for (std::size_t w = 0; w < 8; ++w) {
      std::uint64_t bits = c->in_txn[w].load(std::memory_order_acquire);
      while (bits) {
        const int b = __builtin_ctzll(bits);
        bits &= bits - 1;
        fn(c->conns()[w * 64 + static_cast<std::size_t>(b)]);
      }
    }
  }
}

namespace detail {
activity::Activity* live_activity_first(LiveConn& live);
}
// The connection's activity block, made on first use: the hot path is one
// load and a predicted branch; the first statement of a connection takes a
// block from the pool (one lock, and one calloc per 256 blocks).
inline activity::Activity* live_activity(LiveConn& live) {
  activity::Activity* a = live.activity.load(std::memory_order_acquire);
  if (__builtin_expect(a != nullptr, 1)) return a;
  return detail::live_activity_first(live);
}
// Readers (reports, the watchdog) and calls that record nothing new: null
// when the connection has sent no statement.
inline activity::Activity* live_activity_if(const LiveConn& live) {
  return live.activity.load(std::memory_order_acquire);
}
// A call's result state: a connection with no block yet and nothing running
// has nothing to record (no block is made for it).
inline void note_live_result(LiveConn& live, bool busy) {
  activity::Activity* a = busy ? live_activity(live) : live_activity_if(live);
  if (a) activity::note_result(*a, busy);
}

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
  if (is_in != was_in) detail::mark_in_txn(live, is_in);  // after the state: see the watchdog
  return change;
}

}  // namespace connleak
