#include "collector/core/checkouts.h"

#include <thread>

#include "collector/core/contexts.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/journal_sink.h"
#include "collector/core/string_table.h"

namespace connleak {

namespace {
constexpr auto make_table = [] { return new CheckoutTable; };  // never destroyed: used during exit
}  // namespace

CheckoutTable& CheckoutTable::instance() {
  return fork_safe_static(make_table);
}

bool CheckoutTable::instance_built() {
  return fork_safe_static_if_built(make_table) != nullptr;
}

std::uint64_t CheckoutTable::register_pool(const char* kind, const char* name, const char* target,
                                           int max_size) {
  PoolRecord pool;
  pool.kind = intern_string(kind ? kind : "");
  pool.name = intern_string(name ? name : "");
  pool.target = intern_string(target ? target : "");
  pool.max_size = max_size < 0 ? -1 : max_size;
  std::lock_guard<ForkMutex> lock(mutex_);
  pool.id = pools_.size() + 1;
  pools_.push_back(pool);
  return pool.id;
}

bool CheckoutTable::has_pool(std::uint64_t pool_id) {
  std::lock_guard<ForkMutex> lock(mutex_);
  return pool_id >= 1 && pool_id <= pools_.size();
}

bool CheckoutTable::pool(std::uint64_t id, PoolRecord* out) {
  std::lock_guard<ForkMutex> lock(mutex_);
  if (id < 1 || id > pools_.size()) return false;
  *out = pools_[id - 1];
  return true;
}

std::uint64_t CheckoutTable::on_checkout(CheckoutRecord record) {
  std::lock_guard<ForkMutex> lock(mutex_);
  record.id = next_id_++;
  record.end = CheckoutEnd::kOpen;
  if (!record.context) record.context = current_context();
  ++counters_.taken;
  std::uint64_t id = record.id;
  if (JournalSink* sink = journal_sink()) record.journal_slot = sink->checkout_opened(record);
  open_.emplace(id, record);
  return id;
}

bool CheckoutTable::on_checkin(std::uint64_t id, CheckoutEnd how, Timestamp when,
                               CheckoutRecord* out) {
  std::lock_guard<ForkMutex> lock(mutex_);
  auto it = open_.find(id);
  if (it == open_.end()) return false;
  CheckoutRecord record = it->second;
  open_.erase(it);
  if (record.journal_slot)
    if (JournalSink* sink = journal_sink()) sink->closed(record.journal_slot);
  record.end = how;
  record.returned = when;
  if (how == CheckoutEnd::kReclaimed)
    ++counters_.reclaimed;
  else
    ++counters_.returned;
  if (out) *out = record;
  record.task_ref = nullptr;  // the caller's to drop; the copies kept here never read it
  if (record.context) {
    auto [at, fresh] = longest_.try_emplace(record.context, record);
    auto held = [](const CheckoutRecord& r) { return r.returned.mono_ns - r.checked_out.mono_ns; };
    if (!fresh && held(record) > held(at->second)) at->second = record;
  }
  // Reclaimed checkouts are leaks and alerted ones carry a warning: the report
  // keeps them all. Clean returns only feed the timeline, so a bounded window.
  if (how == CheckoutEnd::kReclaimed || record.alerted) {
    kept_.push_back(record);
  } else {
    recent_returns_.push_back(record);
    if (recent_returns_.size() > kRecentReturns) recent_returns_.pop_front();
  }
  return true;
}

bool CheckoutTable::take_snapshot_slot(std::uint64_t pool_id, std::int64_t now_mono,
                                       std::int64_t interval_ns) {
  std::lock_guard<ForkMutex> lock(mutex_);
  if (pool_id < 1 || pool_id > pools_.size()) return false;
  PoolRecord& pool = pools_[pool_id - 1];
  if (pool.last_snapshot_mono != 0 && now_mono - pool.last_snapshot_mono < interval_ns)
    return false;
  pool.last_snapshot_mono = now_mono;
  return true;
}

// Bounded wait on the exit path: a thread stuck inside a call must not hang exit.
bool CheckoutTable::lock_until(std::int64_t deadline_mono_ns) {
  while (!mutex_.try_lock()) {
    if (mono_now_ns() >= deadline_mono_ns) return false;
    std::this_thread::yield();
  }
  return true;
}

CheckoutSnapshot CheckoutTable::snapshot(std::int64_t deadline_mono_ns) {
  CheckoutSnapshot snap;
  if (!lock_until(deadline_mono_ns)) {
    snap.complete = false;
    return snap;
  }
  snap.pools = pools_;
  snap.open.reserve(open_.size());
  for (const auto& entry : open_) snap.open.push_back(entry.second);
  snap.ended.assign(kept_.begin(), kept_.end());
  snap.ended.insert(snap.ended.end(), recent_returns_.begin(), recent_returns_.end());
  snap.counters = counters_;
  mutex_.unlock();
  return snap;
}

CheckoutTable::ContextCheckouts CheckoutTable::of_context(std::uint32_t context) {
  ContextCheckouts out;
  std::lock_guard<ForkMutex> lock(mutex_);
  for (const auto& entry : open_)
    if (entry.second.context == context) out.open.push_back(entry.second);
  for (const CheckoutRecord& r : kept_)
    if (r.context == context && r.end == CheckoutEnd::kReclaimed) out.reclaimed.push_back(r);
  if (auto it = longest_.find(context); it != longest_.end()) out.longest = it->second;
  return out;
}

std::size_t CheckoutTable::open_count() {
  std::lock_guard<ForkMutex> lock(mutex_);
  return open_.size();
}

void CheckoutTable::after_fork_child() {
  // The child's pools are the parent's objects copied: keep the pools (the
  // child may keep using them) but not the parent's checkouts.
  open_.clear();
  kept_.clear();
  recent_returns_.clear();
  longest_.clear();
  counters_ = {};
  for (PoolRecord& pool : pools_) pool.last_snapshot_mono = 0;
}

}  // namespace connleak
