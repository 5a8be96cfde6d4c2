#pragma once
// Pool checkouts: the collector's table of pools and of the connections they
// lend out (include/connleak/connleak.h, called by python/connleak's
// adapters). A sibling of the connection Registry, owned by the collector, read
// by the same reports and the same background thread: one truth. A pooled
// connection that is open for hours is normal; a checkout held for minutes, or
// never returned, is what a pooled program leaks.
#include <cstdint>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "collector/core/fork_mutex.h"
#include "collector/core/stack_depot.h"
#include "collector/util/timeutil.h"

namespace connleak {

enum class CheckoutEnd : std::int8_t {
  kOpen = -1,
  kReturned = 0,
  kReclaimed = 1,
  kInvalidated = 2
};

struct PoolRecord {
  std::uint64_t id = 0;
  const char* kind = "";                // interned: "sqlalchemy.QueuePool", "asyncpg.Pool", ...
  const char* name = "";                // interned, redacted
  const char* target = "";              // interned, redacted
  int max_size = -1;                    // -1: unknown
  std::int64_t last_snapshot_mono = 0;  // rate limit of pool_exhausted snapshots
};

struct CheckoutRecord {
  std::uint64_t id = 0;
  std::uint64_t pool = 0;
  std::uint64_t connection = 0;       // the connection record's id; 0 = unlinked
  std::uintptr_t connection_key = 0;  // its Registry key (for its LiveConn); 0 = unlinked
  int thread = 0;
  const void* py_thread = nullptr;  // the holder's PyThreadState, compared by identity only
  const char* task = nullptr;       // interned asyncio task name, or null
  // A weak reference (PyObject*) to that task, owned by the shim's pool API,
  // only dereferenced under the GIL while the checkout is open (see
  // shim/python/python_task.h); null once the checkout has ended.
  void* task_ref = nullptr;
  Timestamp checked_out;
  Timestamp returned;  // valid once `end` is not kOpen
  CheckoutEnd end = CheckoutEnd::kOpen;
  StackId stack = 0;
  StackId py_stack = 0;       // script_depot()
  std::uint32_t context = 0;  // ContextTable id current at the checkout (0: none)
  // checkout_threshold alert, set by the worker thread.
  bool alerted = false;
  double alert_after = 0;
  std::int8_t in_transaction_at_alert = -1;  // -1 unknown, 0 no, 1 yes
  StackId holder_py_stack = 0;               // what the holder was doing at the alert
  std::uint32_t journal_slot = 0;            // JournalSink's slot + 1; 0 = not journaled
};

struct CheckoutCounters {
  std::uint64_t taken = 0;
  std::uint64_t returned = 0;  // ended returned or invalidated
  std::uint64_t reclaimed = 0;
};

struct CheckoutSnapshot {
  std::vector<PoolRecord> pools;
  std::vector<CheckoutRecord> open;   // not ended
  std::vector<CheckoutRecord> ended;  // reclaimed ones, alerted ones, and the most recent returns
  CheckoutCounters counters;
  bool complete = true;
};

class CheckoutTable {
 public:
  static CheckoutTable& instance();
  static bool instance_built();  // false until instance() is first called
  CheckoutTable() = default;
  ~CheckoutTable() {
    mutex_.forget();
  }  // test instances only: the process-wide one is never destroyed
  CheckoutTable(const CheckoutTable&) = delete;
  CheckoutTable& operator=(const CheckoutTable&) = delete;

  std::uint64_t register_pool(const char* kind, const char* name, const char* target, int max_size);
  bool has_pool(std::uint64_t pool_id);
  // Fills pool, id; the rest is the caller's. Returns the checkout id.
  std::uint64_t on_checkout(CheckoutRecord record);
  // False for an unknown or already-ended id. `out` receives the ended record.
  bool on_checkin(std::uint64_t id, CheckoutEnd how, Timestamp when, CheckoutRecord* out = nullptr);
  // The pool's record (copied); false if unknown.
  bool pool(std::uint64_t id, PoolRecord* out);
  // Rate limit: true (and the clock restarted) when the pool's last snapshot is
  // at least `interval_ns` old.
  bool take_snapshot_slot(std::uint64_t pool_id, std::int64_t now_mono, std::int64_t interval_ns);

  // Visits every open checkout under the lock (try-locked until the deadline;
  // false if it could not be taken). `visit` may modify the record.
  template <typename Visit>
  bool scan_open(std::int64_t deadline_mono_ns, Visit&& visit) {
    if (!lock_until(deadline_mono_ns)) return false;
    for (auto& entry : open_) visit(entry.second);
    mutex_.unlock();
    return true;
  }
  // Applies `fn(CheckoutRecord&)` to an open checkout; false if it has ended.
  template <typename Fn>
  bool update_open(std::uint64_t id, Fn&& fn) {
    std::lock_guard<ForkMutex> lock(mutex_);
    auto it = open_.find(id);
    if (it == open_.end()) return false;
    fn(it->second);
    return true;
  }
  CheckoutSnapshot snapshot(std::int64_t deadline_mono_ns);
  // What a context left behind (test attribution): its open checkouts, its
  // reclaimed ones, and its longest-held ended checkout (end kOpen if none).
  struct ContextCheckouts {
    std::vector<CheckoutRecord> open, reclaimed;
    CheckoutRecord longest;
  };
  ContextCheckouts of_context(std::uint32_t context);
  std::size_t open_count();

  void after_fork_child();  // ForkMutex has re-initialised the lock  // the parent's checkouts are
                            // the parent's to report

  // Returned checkouts kept for the report (the timeline): the most recent ones.
  static constexpr std::size_t kRecentReturns = 1000;

 private:
  bool lock_until(std::int64_t deadline_mono_ns);

  ForkMutex mutex_;
  std::vector<PoolRecord> pools_;  // index = id - 1
  std::unordered_map<std::uint64_t, CheckoutRecord> open_;
  std::vector<CheckoutRecord> kept_;           // reclaimed or alerted: always reported
  std::deque<CheckoutRecord> recent_returns_;  // bounded by kRecentReturns
  // Per context, the ended checkout held longest: a runner's hold threshold
  // is checked against it without keeping every return.
  std::unordered_map<std::uint32_t, CheckoutRecord> longest_;
  std::uint64_t next_id_ = 1;
  CheckoutCounters counters_;
};

}  // namespace connleak
