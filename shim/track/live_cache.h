#pragma once
// Thread-local cache handle -> LiveConn for the query hot path: a hit costs a
// few loads and no lock. LiveConns are type-stable (never freed), so a stale
// entry is harmless: its `handle` no longer matches and we fall back to the
// registry (one shard lock) and refill the slot.
#include <cstdint>

#include "collector/core/live_state.h"
#include "collector/core/registry.h"

namespace connleak::shim {

inline LiveConn* live_conn_for(std::uintptr_t handle) {
  struct Slot {
    std::uintptr_t handle;
    LiveConn* live;
  };
  static thread_local Slot t_slots[16] __attribute__((tls_model("initial-exec")));
  Slot& slot = t_slots[(handle >> 4) & 15];
  if (slot.handle == handle && slot.live &&
      slot.live->handle.load(std::memory_order_acquire) == handle)
    return slot.live;
  LiveConn* live = Registry::instance().live_of(handle);
  slot = {handle, live};
  return live;
}

}  // namespace connleak::shim
