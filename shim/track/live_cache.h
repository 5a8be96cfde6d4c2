#pragma once
// Thread-local cache handle -> LiveConn for the query hot path: a hit costs a
// few loads and no lock. LiveConns are type-stable (never freed), so a stale
// entry is harmless: its `handle` no longer matches and we fall back to the
// registry (one shard lock) and refill the slot.
#include <cstdint>

#include "collector/core/live_state.h"
#include "collector/core/registry.h"

namespace connleak::shim {

namespace detail {
struct LiveSlot {
  std::uintptr_t handle;
  LiveConn* live;
};
inline __thread LiveSlot t_live_slots[16] __attribute__((tls_model("initial-exec")));
// The registry lookup and the refill, out of line: the hit path then needs
// no saved registers in its callers.
__attribute__((noinline)) inline LiveConn* live_conn_miss(std::uintptr_t handle) {
  LiveConn* live = Registry::instance().live_of(handle);
  t_live_slots[(handle >> 4) & 15] = {handle, live};
  return live;
}
}  // namespace detail

inline LiveConn* live_conn_for(std::uintptr_t handle) {
  detail::LiveSlot& slot = detail::t_live_slots[(handle >> 4) & 15];
  if (__builtin_expect(slot.handle == handle && slot.live &&
                           slot.live->handle.load(std::memory_order_acquire) == handle,
                       1))
    return slot.live;
  return detail::live_conn_miss(handle);
}

}  // namespace connleak::shim
