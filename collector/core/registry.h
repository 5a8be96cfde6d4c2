#pragma once
// Handle -> record for every connection the shim has seen acquired and not yet
// released, plus a bounded memory of recently closed handles (to tell a double
// close from a close of a handle we never saw). Sharded mutexes: hooks on many
// threads touch different shards, and no lock is held while calling out.
#include <array>
#include <atomic>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "collector/core/fork_mutex.h"
#include "collector/core/journal_sink.h"
#include "collector/core/live_state.h"
#include "collector/core/stack_depot.h"
#include "collector/util/timeutil.h"

namespace connleak {

// The order is LibraryPart's: a record's library is the alternative it holds.
enum class Library : std::uint8_t { kLibpq, kMysql, kSocket };
const char* library_name(Library lib);

// What only one library's records know. A record holds exactly one of these,
// so a fact of one library cannot sit, unused, in another's record.
struct LibpqPart {};  // libpq answers everything else itself (PQstatus, PQbackendPID)

// Where a MySQL handle is in its life. The record is made at mysql_init (the
// handle owns client memory from then on); a connect moves it on.
enum class MysqlPhase : std::uint8_t { kInitialized, kConnecting, kConnected, kFailed };
const char* mysql_phase_name(MysqlPhase phase);

struct MysqlPart {
  MysqlPhase phase = MysqlPhase::kInitialized;
  // mysql_init's stacks (0: its call was not seen). Once a connect was seen,
  // the record's open stack is the connect's: where the connection was made.
  StackId init_stack = 0;
  StackId py_init_stack = 0;
  // mysql_init was called from another function than the connect (a handle
  // factory): the report shows its stack too.
  bool init_elsewhere = false;
};

// Drivers speaking the wire protocol themselves.
struct SocketPart {
  const char* protocol = nullptr;  // static "postgresql" | "mysql"
  int fd = -1;                     // the descriptor it was connected on
  // Static text saying why the transaction state is unknown ("encrypted",
  // ...), once the conversation could no longer be followed; null before.
  const char* txn_note = nullptr;
};

using LibraryPart = std::variant<LibpqPart, MysqlPart, SocketPart>;
static_assert(LibraryPart(MysqlPart{}).index() == static_cast<std::size_t>(Library::kMysql) &&
              LibraryPart(SocketPart{}).index() == static_cast<std::size_t>(Library::kSocket));

// One connection, from its acquisition to its release: every fact any
// library's hooks learn about it is here (the shim's side tables hold only
// hot-path or pre-record state, see socket_table.h and hooks_mysql.cpp).
struct ConnRecord {
  // First, together: what the watchdog's lifetime round reads of every
  // record (one cache line of the map node).
  Timestamp opened;
  std::uint8_t alerts = 0;  // alerts raised by the watchdog (kAlert* bits)
  bool ignored = false;     // connleak_ignore(): no alerts, not a leak
  bool inherited = false;   // opened by the parent before fork(): the parent's to report
  std::uint32_t resets = 0;
  std::uint64_t id = 0;
  std::uintptr_t handle = 0;
  LiveConn* live = nullptr;        // lock-free transaction state, owned by this record
  LibraryPart part;                // which library, and what only that library knows
  const char* target = "";         // interned, already redacted
  const char* client_module = "";  // interned path of the client library that served it
  std::int64_t server_id = -1;     // backend pid / connection id; -1 = not known yet
  int thread = 0;
  StackId open_stack = 0;
  StackId py_open_stack = 0;  // in script_depot(); 0 = none
  std::uint32_t pool = 0;  // adopted by this pool (connleak_pool_adopt): idle at exit is not a leak
  std::uint32_t context = 0;       // ContextTable id current when it was opened (0: none)
  std::uint32_t journal_slot = 0;  // JournalSink's slot + 1; 0 = not journaled
  // When the watchdog raised each alert, as how long the connection had been
  // open / in its transaction / idle then: milliseconds (a tick is coarser),
  // kept small because every open connection carries them. Read them with
  // *_alert_after().
  std::uint32_t lifetime_alert_ms = 0;
  std::uint32_t txn_alert_ms = 0;
  std::uint32_t idle_alert_ms = 0;  // idle_threshold: idle that long when flagged
  StackId txn_alert_stack = 0;      // where the flagged transaction began
  StackId txn_alert_py_stack = 0;

  double lifetime_alert_after() const { return lifetime_alert_ms / 1e3; }
  double txn_alert_after() const { return txn_alert_ms / 1e3; }
  double idle_alert_after() const { return idle_alert_ms / 1e3; }
  // Nanoseconds to the nearest millisecond, saturated (49 days).
  static std::uint32_t alert_ms(std::int64_t ns) {
    if (ns <= 0) return 0;
    const std::int64_t ms = (ns + 500'000) / 1'000'000;
    return ms > 0xffffffffLL ? 0xffffffffu : static_cast<std::uint32_t>(ms);
  }
  Library library() const { return static_cast<Library>(part.index()); }
  MysqlPart* mysql() { return std::get_if<MysqlPart>(&part); }
  const MysqlPart* mysql() const { return std::get_if<MysqlPart>(&part); }
  const SocketPart* socket() const { return std::get_if<SocketPart>(&part); }
};

enum AlertBits : std::uint8_t { kAlertLifetime = 1, kAlertIdleInTransaction = 2, kAlertIdle = 4 };

// A closed connection that the report must still show (it carried an alert).
struct ClosedRecord {
  ConnRecord record;
  Timestamp closed;
  StackId close_stack = 0;
  StackId py_close_stack = 0;
  // Closed by CPython tearing down module globals at exit, not by the
  // program: still a leak of the program's.
  bool by_interpreter = false;
  // Closed from a finalizer (a __del__, SQLAlchemy's _finalize_fairy for a
  // connection dropped while checked out): the program lost it; still a leak.
  bool by_finalizer = false;
  // Closed while another runtime (Perl, PHP, Ruby) shut down: like by_interpreter,
  // the program still held it; reported as closed_by "runtime_exit".
  bool by_runtime = false;
  // What the connection last did (statements, last statement, last use),
  // kept for the report: the record's LiveConn, retired at the close (no hook
  // writes it any more) instead of recycled. Null when nothing is kept.
  const LiveConn* activity = nullptr;
  // Set for a double close: where the already-closed handle was closed again.
  bool double_close = false;
  Timestamp closed_again;
  StackId close_again_stack = 0;
  StackId py_close_again_stack = 0;
};

// Where and how a close happened (the stacks of the closing call).
struct CloseEvent {
  Timestamp when;
  StackId stack = 0;
  StackId py_stack = 0;
  bool by_interpreter = false;
  bool by_finalizer = false;  // see ClosedRecord
  bool by_runtime = false;    // see ClosedRecord
};

struct Counters {
  std::uint64_t opened = 0;
  std::uint64_t closed = 0;
  std::uint64_t resets = 0;
  std::uint64_t double_closes = 0;
  std::uint64_t unknown_closes = 0;
};

struct Snapshot {
  std::vector<ConnRecord> open;         // includes inherited records (flagged as such)
  std::vector<ClosedRecord> flagged;    // closed but carrying an alert
  std::vector<ClosedRecord> finalized;  // closed by the interpreter at exit: leaks
  Counters counters;
  std::uint64_t ignored = 0;  // open handles the program asked us to ignore
  bool complete = true;       // false when a shard stayed locked past the deadline
};

enum class CloseOutcome { kClosed, kDoubleClose, kUnknown };

class Registry {
 public:
  static Registry& instance();
  static bool instance_built();  // false until instance() is first called
  Registry() = default;
  ~Registry();  // test instances only: the process-wide one is never destroyed
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // Records a newly acquired handle (and gives it a LiveConn). A handle still
  // marked open (its close went unseen) is replaced. Returns the record id.
  std::uint64_t on_open(ConnRecord record);
  // Call BEFORE the real close: once the real close frees the handle, another
  // thread may be handed the same address by a new connect. `info_out`
  // receives the closed record (for a double close with both stacks); a
  // flagged connection's (record.alerts != 0) is also kept for the report.
  CloseOutcome on_close(std::uintptr_t handle, const CloseEvent& event,
                        ClosedRecord* info_out = nullptr);
  CloseOutcome on_close(std::uintptr_t handle, StackId close_stack, Timestamp when,
                        ClosedRecord* info_out = nullptr) {
    CloseEvent event;
    event.when = when;
    event.stack = close_stack;
    return on_close(handle, event, info_out);
  }
  // The record's lock-free state, for a hook's thread-local cache; null if unknown.
  LiveConn* live_of(std::uintptr_t handle);
  // connleak_ignore(): false if the handle is not open.
  bool set_ignored(std::uintptr_t handle);
  // Applies `fn(ConnRecord&)` to an open record under its shard lock (what a
  // MySQL connect learns after mysql_init made the record). False if not open.
  // `fn` must not call back into the registry.
  template <typename Fn>
  bool update(std::uintptr_t handle, Fn&& fn) {
    Shard& shard = shard_for(handle);
    std::lock_guard<ForkMutex> lock(shard.mutex);
    auto it = shard.open.find(handle);
    if (it == shard.open.end()) return false;
    fn(it->second);
    if (it->second.opened.mono_ns < shard.lifetime_floor)
      shard.lifetime_floor = it->second.opened.mono_ns;
    if (it->second.journal_slot)
      if (JournalSink* sink = journal_sink()) sink->updated(it->second.journal_slot, it->second);
    return true;
  }
  // Applies `fn(const ConnRecord&)` to an open record under its shard lock,
  // changing nothing (no journal update). False if not open.
  template <typename Fn>
  bool inspect(std::uintptr_t handle, Fn&& fn) {
    Shard& shard = shard_for(handle);
    std::lock_guard<ForkMutex> lock(shard.mutex);
    auto it = shard.open.find(handle);
    if (it == shard.open.end()) return false;
    fn(static_cast<const ConnRecord&>(it->second));
    return true;
  }
  // Visits every open record under its shard lock (try-locked until the
  // deadline; returns false if a shard was skipped). `visit` may modify the
  // record and must not call back into the registry.
  template <typename Visit>
  bool scan(std::int64_t deadline_mono_ns, Visit&& visit);
  // The watchdog's lifetime round: calls `visit(ConnRecord&)` under the shard
  // lock for each open record opened at or before `due_before_mono` that is
  // not ignored, inherited or already lifetime-flagged. A shard whose oldest
  // such record is younger is skipped without visiting its records (see
  // Shard::lifetime_floor). Try-locks until the deadline like scan().
  template <typename Visit>
  bool scan_lifetime(std::int64_t deadline_mono_ns, std::int64_t due_before_mono, Visit&& visit);
  // Applies `fn(ConnRecord&)` to one open record under its shard lock,
  // try-locked until the deadline: 1 done, 0 not open, -1 the shard stayed
  // busy. No journal update; `fn` must not call back into the registry.
  template <typename Fn>
  int visit_open(std::uintptr_t handle, std::int64_t deadline_mono_ns, Fn&& fn) {
    Shard& shard = shard_for(handle);
    if (!lock_until(shard.mutex, deadline_mono_ns)) return -1;
    auto it = shard.open.find(handle);
    const bool found = it != shard.open.end();
    if (found) fn(it->second);
    shard.mutex.unlock();
    return found ? 1 : 0;
  }
  // Counts a reset of a tracked handle; false if the handle is unknown.
  bool on_reset(std::uintptr_t handle);

  // Copies the registry. On the exit path other threads may still be in hooks:
  // shards are try-locked until `deadline_mono_ns`, never waited on forever.
  Snapshot snapshot(std::int64_t deadline_mono_ns);
  Counters counters() const;
  std::size_t open_count() const { return open_count_.load(std::memory_order_relaxed); }

  // In a fork child (ForkMutex already re-initialised the locks): the parent's handles are marked
  // inherited and the counters start from zero.
  void after_fork_child();

 private:
  struct ClosedEntry {
    ConnRecord record;
    CloseEvent close;
  };
  using OpenMap = std::unordered_map<std::uintptr_t, ConnRecord>;
  struct Shard {
    ForkMutex mutex;
    OpenMap open;
    std::unordered_map<std::uintptr_t, ClosedEntry> recently_closed;
    std::deque<std::uintptr_t> closed_order;  // FIFO bound on recently_closed, one per key
    // The node of the last record closed here, kept for the next open: a
    // connect + close pair then allocates and frees no map node at all.
    OpenMap::node_type spare;
    // No open record the lifetime round could still flag was opened before
    // this: lowered by every open, raised to the exact oldest by each round
    // that visits the shard. A close leaves it low (it stays a lower bound),
    // so that shard is visited once more when the bound comes due.
    std::int64_t lifetime_floor = INT64_MAX;
  };
  static constexpr std::size_t kShards = 64;
  static constexpr std::size_t kRecentlyClosedPerShard = 1024;

  Shard& shard_for(std::uintptr_t handle) { return shards_[(handle >> 4) % kShards]; }
  static bool lock_until(ForkMutex& mutex, std::int64_t deadline_mono_ns);
  void remember_closed(Shard& shard, const ConnRecord& record, const CloseEvent& close);

  std::array<Shard, kShards> shards_;
  ForkMutex flagged_mutex_;
  std::vector<ClosedRecord> flagged_;
  std::vector<ClosedRecord> finalized_;  // guarded by flagged_mutex_
  std::atomic<std::uint64_t> next_id_{1};
  std::atomic<std::size_t> open_count_{0};
  std::atomic<std::uint64_t> opened_{0}, closed_{0}, resets_{0}, double_closes_{0},
      unknown_closes_{0};
};

template <typename Visit>
bool Registry::scan(std::int64_t deadline_mono_ns, Visit&& visit) {
  bool complete = true;
  for (Shard& shard : shards_) {
    if (!lock_until(shard.mutex, deadline_mono_ns)) {
      complete = false;
      continue;
    }
    for (auto& entry : shard.open) visit(entry.second);
    shard.mutex.unlock();
  }
  return complete;
}

template <typename Visit>
bool Registry::scan_lifetime(std::int64_t deadline_mono_ns, std::int64_t due_before_mono,
                             Visit&& visit) {
  bool complete = true;
  for (Shard& shard : shards_) {
    if (!lock_until(shard.mutex, deadline_mono_ns)) {
      complete = false;
      continue;
    }
    if (shard.lifetime_floor <= due_before_mono) {
      std::int64_t floor = INT64_MAX;
      for (auto& entry : shard.open) {
        ConnRecord& rec = entry.second;
        if (rec.ignored || rec.inherited || (rec.alerts & kAlertLifetime)) continue;
        if (rec.opened.mono_ns <= due_before_mono) visit(rec);
        if (!(rec.alerts & kAlertLifetime) && rec.opened.mono_ns < floor)
          floor = rec.opened.mono_ns;
      }
      shard.lifetime_floor = floor;
    }
    shard.mutex.unlock();
  }
  return complete;
}

}  // namespace connleak
