#include "shim/track/activity_track.h"

#include <cstring>
#include <string>

#include "collector/activity/activity.h"
#include "collector/activity/prepared.h"
#include "collector/core/string_table.h"
#include "collector/policy/options.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/track/live_cache.h"

namespace connleak::shim {

namespace {

LiveConn* live_for(const void* handle) {
  if (!handle || !options().statements) return nullptr;
  return live_conn_for(reinterpret_cast<std::uintptr_t>(handle));
}

// Prepared statements are keyed by the connection's record id (unique for the
// process's life, unlike a handle address), or 0 when the connection is not
// known (a MySQL statement handle's address is unique enough while it lives).
std::uint64_t owner_of(const void* handle) {
  LiveConn* live = live_for(handle);
  return live ? live->record_id.load(std::memory_order_relaxed) : 0;
}

}  // namespace

void activity_sent(const void* handle, const char* sql, std::size_t n, activity::Dialect dialect,
                   bool cut) {
  if (LiveConn* live = live_for(handle))
    if (activity::Activity* a = live_activity(*live))
      activity::note_statement(*a, sql, n, dialect, cut);
}

namespace {
// Bounded like the per-connection copy: a 1 MB statement is not read whole.
const char* normalized_interned(const char* sql, std::size_t n, activity::Dialect dialect,
                                bool cut_copy) {
  if (n == static_cast<std::size_t>(-1)) n = std::strlen(sql);
  const bool cut = cut_copy || n > activity::kRawBytes;
  std::string text = activity::normalize_sql(
      std::string_view(sql, n > activity::kRawBytes ? activity::kRawBytes : n), dialect, cut);
  return intern_string(text);
}
}  // namespace

void activity_prepare(const void* handle, const void* name, std::size_t name_len, const char* sql,
                      std::size_t n, activity::Dialect dialect, bool cut) {
  if (!options().statements || !sql) return;
  Reentry guard;
  activity::prepared_put(activity::prepared_key(owner_of(handle), name, name_len),
                         normalized_interned(sql, n, dialect, cut));
}

void activity_prepare_pending(const void* handle, const char* sql, std::size_t n,
                              activity::Dialect dialect, bool cut) {
  LiveConn* live = live_for(handle);
  if (!live || !sql) return;
  Reentry guard;
  activity::Activity* a = live_activity(*live);
  if (!a) return;
  a->pending_prepare.store(normalized_interned(sql, n, dialect, cut), std::memory_order_relaxed);
}

void activity_prepared_as(const void* handle, const void* name, std::size_t name_len) {
  LiveConn* live = live_for(handle);
  activity::Activity* a = live ? live_activity_if(*live) : nullptr;
  if (!a) return;  // nothing pending: no block was ever needed
  const char* text = a->pending_prepare.exchange(nullptr, std::memory_order_relaxed);
  if (!text) return;
  activity::prepared_put(
      activity::prepared_key(live->record_id.load(std::memory_order_relaxed), name, name_len),
      text);
}

void activity_execute(const void* handle, const void* name, std::size_t name_len) {
  LiveConn* live = live_for(handle);
  if (!live) return;
  activity::Activity* a = live_activity(*live);
  if (!a) return;
  const char* text = activity::prepared_get(
      activity::prepared_key(live->record_id.load(std::memory_order_relaxed), name, name_len));
  activity::note_prepared(*a, text ? text : activity::kUnknownPrepared);
}

void activity_result(const void* handle, bool busy) {
  if (LiveConn* live = live_for(handle)) note_live_result(*live, busy);
}

}  // namespace connleak::shim
