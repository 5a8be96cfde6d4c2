#include "collector/registry.h"

#include <thread>

namespace connleak {

const char* library_name(Library lib) {
  switch (lib) {
    case Library::kLibpq: return "libpq";
    case Library::kMysql: return "mysql";
    case Library::kSocket: return "socket";
  }
  return "unknown";
}

Registry& Registry::instance() {
  static Registry& registry = *new Registry;  // never destroyed: used during exit
  return registry;
}

std::uint64_t Registry::on_open(ConnRecord record) {
  record.id = next_id_.fetch_add(1, std::memory_order_relaxed);
  Shard& shard = shard_for(record.handle);
  bool replaced = false;
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    // The address is live again, so a later close of it is not a double close.
    shard.recently_closed.erase(record.handle);
    auto [it, inserted] = shard.open.insert_or_assign(record.handle, record);
    replaced = !inserted;
  }
  if (!replaced) open_count_.fetch_add(1, std::memory_order_relaxed);
  opened_.fetch_add(1, std::memory_order_relaxed);
  return record.id;
}

void Registry::remember_closed(Shard& shard, ClosedEntry entry) {
  std::uintptr_t handle = entry.record.handle;
  if (shard.recently_closed.insert_or_assign(handle, std::move(entry)).second)
    shard.closed_order.push_back(handle);
  while (shard.closed_order.size() > kRecentlyClosedPerShard) {
    shard.recently_closed.erase(shard.closed_order.front());
    shard.closed_order.pop_front();
  }
}

CloseOutcome Registry::on_close(std::uintptr_t handle, StackId close_stack, Timestamp when,
                                ClosedRecord* double_close_out) {
  Shard& shard = shard_for(handle);
  ClosedRecord flagged;
  {
    std::lock_guard<std::mutex> lock(shard.mutex);
    if (auto it = shard.open.find(handle); it != shard.open.end()) {
      remember_closed(shard, ClosedEntry{it->second, when, close_stack});
      shard.open.erase(it);
      open_count_.fetch_sub(1, std::memory_order_relaxed);
      closed_.fetch_add(1, std::memory_order_relaxed);
      return CloseOutcome::kClosed;
    }
    auto it = shard.recently_closed.find(handle);
    if (it == shard.recently_closed.end()) {
      unknown_closes_.fetch_add(1, std::memory_order_relaxed);
      return CloseOutcome::kUnknown;
    }
    flagged.record = it->second.record;
    flagged.closed = it->second.closed;
    flagged.close_stack = it->second.close_stack;
    flagged.double_close = true;
    flagged.closed_again = when;
    flagged.close_again_stack = close_stack;
  }
  double_closes_.fetch_add(1, std::memory_order_relaxed);
  if (double_close_out) *double_close_out = flagged;
  std::lock_guard<std::mutex> lock(flagged_mutex_);
  flagged_.push_back(std::move(flagged));
  return CloseOutcome::kDoubleClose;
}

bool Registry::on_reset(std::uintptr_t handle) {
  Shard& shard = shard_for(handle);
  std::lock_guard<std::mutex> lock(shard.mutex);
  auto it = shard.open.find(handle);
  if (it == shard.open.end()) return false;
  ++it->second.resets;
  resets_.fetch_add(1, std::memory_order_relaxed);
  return true;
}

bool Registry::is_open(std::uintptr_t handle) {
  Shard& shard = shard_for(handle);
  std::lock_guard<std::mutex> lock(shard.mutex);
  return shard.open.count(handle) != 0;
}

namespace {
// Bounded wait for a lock on the exit path: a thread stuck in (or killed inside)
// a hook must not hang the process's exit.
template <typename Mutex>
bool lock_until(Mutex& mutex, std::int64_t deadline_mono_ns) {
  while (!mutex.try_lock()) {
    if (mono_now_ns() >= deadline_mono_ns) return false;
    std::this_thread::yield();
  }
  return true;
}
}  // namespace

Snapshot Registry::snapshot(std::int64_t deadline_mono_ns) {
  Snapshot snap;
  snap.open.reserve(open_count());
  for (Shard& shard : shards_) {
    if (!lock_until(shard.mutex, deadline_mono_ns)) {
      snap.complete = false;
      continue;
    }
    for (const auto& [handle, record] : shard.open) snap.open.push_back(record);
    shard.mutex.unlock();
  }
  if (lock_until(flagged_mutex_, deadline_mono_ns)) {
    snap.flagged = flagged_;
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

void Registry::collect_mutexes(std::vector<std::mutex*>& out) {
  for (Shard& shard : shards_) out.push_back(&shard.mutex);
  out.push_back(&flagged_mutex_);
}

void Registry::after_fork_child() {
  for (Shard& shard : shards_) {
    for (auto& [handle, record] : shard.open) record.inherited = true;
  }
  flagged_.clear();  // the parent reports its own alerts
  opened_ = closed_ = resets_ = double_closes_ = unknown_closes_ = 0;
}

}  // namespace connleak
