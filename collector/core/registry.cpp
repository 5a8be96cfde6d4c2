#include "collector/core/registry.h"

#include <thread>

#include "collector/core/contexts.h"
#include "collector/core/fork_safe_static.h"

namespace connleak {

const char* library_name(Library lib) {
  switch (lib) {
    case Library::kLibpq:
      return "libpq";
    case Library::kMysql:
      return "mysql";
    case Library::kSocket:
      return "socket";
  }
  return "unknown";
}

const char* mysql_phase_name(MysqlPhase phase) {
  switch (phase) {
    case MysqlPhase::kInitialized:
      return "initialized";
    case MysqlPhase::kConnecting:
      return "connecting";
    case MysqlPhase::kConnected:
      return "connected";
    case MysqlPhase::kFailed:
      return "failed";
  }
  return "unknown";
}

namespace {
constexpr auto make_registry = [] { return new Registry; };  // never destroyed: used during exit
}  // namespace

Registry& Registry::instance() {
  return fork_safe_static(make_registry);
}

bool Registry::instance_built() {
  return fork_safe_static_if_built(make_registry) != nullptr;
}

Registry::~Registry() {
  for (Shard& shard : shards_) shard.mutex.forget();
  flagged_mutex_.forget();
  for (Shard& shard : shards_)
    for (auto& entry : shard.open) live_free(entry.second.live);
}

std::uint64_t Registry::on_open(ConnRecord record) {
  record.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  if (!record.context) record.context = current_context();
  record.live = live_alloc(record.handle);
  if (record.live) record.live->record_id.store(record.id, std::memory_order_relaxed);
  JournalSink* sink = journal_sink();
  if (sink) record.journal_slot = sink->opened(record);
  Shard& shard = shard_for(record.handle);
  bool replaced = false;
  LiveConn* stale = nullptr;
  {
    std::lock_guard<ForkMutex> lock(shard.mutex);
    // A recently closed entry of this address stays: while the address is
    // open, a close finds it open and never looks there, and its own close
    // overwrites the entry (remember_closed). Erasing it here cost a node per
    // pair and left closed_order a stale key that later evicted the live one.
    if (record.opened.mono_ns < shard.lifetime_floor) shard.lifetime_floor = record.opened.mono_ns;
    if (auto it = shard.open.find(record.handle); it != shard.open.end()) {
      stale = it->second.live;
      if (sink && it->second.journal_slot) sink->closed(it->second.journal_slot);
      it->second = record;
      replaced = true;
    } else if (!shard.spare.empty()) {
      shard.spare.key() = record.handle;
      shard.spare.mapped() = record;
      shard.open.insert(std::move(shard.spare));
    } else {
      shard.open.emplace(record.handle, record);
    }
  }
  live_free(stale);
  if (!replaced) open_count_.fetch_add(1, std::memory_order_relaxed);
  opened_.fetch_add(1, std::memory_order_relaxed);
  return record.id;
}

void Registry::remember_closed(Shard& shard, const ConnRecord& record, const CloseEvent& close) {
  const std::uintptr_t handle = record.handle;
  if (auto it = shard.recently_closed.find(handle); it != shard.recently_closed.end()) {
    it->second.record = record;  // closed before, reopened, closed again
    it->second.close = close;
    return;
  }
  if (shard.closed_order.size() >= kRecentlyClosedPerShard) {
    // Full: the oldest entry's node carries the new one (no free, no malloc).
    auto oldest = shard.recently_closed.extract(shard.closed_order.front());
    shard.closed_order.pop_front();
    if (!oldest.empty()) {
      oldest.key() = handle;
      oldest.mapped() = ClosedEntry{record, close};
      shard.recently_closed.insert(std::move(oldest));
      shard.closed_order.push_back(handle);
      return;
    }
  }
  shard.recently_closed.try_emplace(handle, ClosedEntry{record, close});
  shard.closed_order.push_back(handle);
}

namespace {
ClosedRecord closed_record(const ConnRecord& record, const CloseEvent& close) {
  ClosedRecord c;
  c.record = record;
  c.closed = close.when;
  c.close_stack = close.stack;
  c.py_close_stack = close.py_stack;
  c.by_interpreter = close.by_interpreter;
  c.by_finalizer = close.by_finalizer;
  c.by_runtime = close.by_runtime;
  return c;
}
}  // namespace

CloseOutcome Registry::on_close(std::uintptr_t handle, const CloseEvent& event,
                                ClosedRecord* info_out) {
  Shard& shard = shard_for(handle);
  ClosedRecord again;
  {
    std::unique_lock<ForkMutex> lock(shard.mutex);
    if (auto it = shard.open.find(handle); it != shard.open.end()) {
      ConnRecord record = it->second;
      LiveConn* live = record.live;
      record.live = nullptr;  // freed below; the copies must not point at it
      remember_closed(shard, record, event);
      if (shard.spare.empty())
        shard.spare = shard.open.extract(it);  // the next open here reuses the node
      else
        shard.open.erase(it);
      lock.unlock();
      if (record.journal_slot)
        if (JournalSink* sink = journal_sink()) sink->closed(record.journal_slot);
      open_count_.fetch_sub(1, std::memory_order_relaxed);
      const bool leaked_at_exit =
          (event.by_interpreter || event.by_finalizer || event.by_runtime) && !record.ignored &&
          !record.inherited;
      // A closed record the report shows keeps what the connection last did.
      const bool reported = leaked_at_exit || record.alerts;
      if (reported)
        live_retire(live);
      else
        live_free(live);
      if (leaked_at_exit) {
        // Not closed by the program: reported as a leak, with where it was closed.
        ClosedRecord leaked = closed_record(record, event);
        leaked.activity = live;
        if (info_out) *info_out = leaked;
        std::lock_guard<ForkMutex> finalized_lock(flagged_mutex_);
        finalized_.push_back(std::move(leaked));
        return CloseOutcome::kClosed;
      }
      closed_.fetch_add(1, std::memory_order_relaxed);
      if (record.alerts) {
        // A flagged connection stays in the report after it is closed (the
        // contract), so CI sees alerts even when the program cleaned up.
        ClosedRecord closed = closed_record(record, event);
        closed.activity = live;
        if (info_out) *info_out = closed;
        std::lock_guard<ForkMutex> flagged_lock(flagged_mutex_);
        flagged_.push_back(std::move(closed));
      } else if (info_out) {
        *info_out = closed_record(record, event);  // what the close message names
      }
      return CloseOutcome::kClosed;
    }
    auto it = shard.recently_closed.find(handle);
    if (it == shard.recently_closed.end()) {
      unknown_closes_.fetch_add(1, std::memory_order_relaxed);
      return CloseOutcome::kUnknown;
    }
    again = closed_record(it->second.record, it->second.close);
    again.double_close = true;
    again.closed_again = event.when;
    again.close_again_stack = event.stack;
    again.py_close_again_stack = event.py_stack;
  }
  double_closes_.fetch_add(1, std::memory_order_relaxed);
  if (info_out) *info_out = again;
  std::lock_guard<ForkMutex> lock(flagged_mutex_);
  flagged_.push_back(std::move(again));
  return CloseOutcome::kDoubleClose;
}

bool Registry::on_reset(std::uintptr_t handle) {
  Shard& shard = shard_for(handle);
  std::lock_guard<ForkMutex> lock(shard.mutex);
  auto it = shard.open.find(handle);
  if (it == shard.open.end()) return false;
  ++it->second.resets;
  resets_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

LiveConn* Registry::live_of(std::uintptr_t handle) {
  Shard& shard = shard_for(handle);
  std::lock_guard<ForkMutex> lock(shard.mutex);
  auto it = shard.open.find(handle);
  return it == shard.open.end() ? nullptr : it->second.live;
}

bool Registry::set_ignored(std::uintptr_t handle) {
  Shard& shard = shard_for(handle);
  std::lock_guard<ForkMutex> lock(shard.mutex);
  auto it = shard.open.find(handle);
  if (it == shard.open.end()) return false;
  it->second.ignored = true;
  return true;
}

// Bounded wait for a lock on the exit path: a thread stuck in (or killed inside)
// a hook must not hang the process's exit.
bool Registry::lock_until(ForkMutex& mutex, std::int64_t deadline_mono_ns) {
  while (!mutex.try_lock()) {
    if (mono_now_ns() >= deadline_mono_ns) return false;
    std::this_thread::yield();
  }
  return true;
}

Snapshot Registry::snapshot(std::int64_t deadline_mono_ns) {
  Snapshot snap;
  snap.open.reserve(open_count());
  for (Shard& shard : shards_) {
    if (!lock_until(shard.mutex, deadline_mono_ns)) {
      snap.complete = false;
      continue;
    }
    for (const auto& [handle, record] : shard.open) {
      if (record.ignored) {
        ++snap.ignored;
        continue;
      }
      snap.open.push_back(record);
    }
    shard.mutex.unlock();
  }
  if (lock_until(flagged_mutex_, deadline_mono_ns)) {
    snap.flagged = flagged_;
    snap.finalized = finalized_;
    flagged_mutex_.unlock();
  } else {
    snap.complete = false;
  }
  snap.counters = counters();
  return snap;
}

Counters Registry::counters() const {
  Counters c;
  c.opened = opened_.load(std::memory_order_relaxed);
  c.closed = closed_.load(std::memory_order_relaxed);
  c.resets = resets_.load(std::memory_order_relaxed);
  c.double_closes = double_closes_.load(std::memory_order_relaxed);
  c.unknown_closes = unknown_closes_.load(std::memory_order_relaxed);
  return c;
}

void Registry::after_fork_child() {
  for (Shard& shard : shards_) {
    for (auto& [handle, record] : shard.open) {
      record.inherited = true;
      record.journal_slot = 0;  // a slot of the parent's journal: the child starts its own
    }
  }
  flagged_.clear();  // the parent reports its own alerts
  finalized_.clear();
  opened_ = closed_ = resets_ = double_closes_ = unknown_closes_ = 0;
}

}  // namespace connleak
