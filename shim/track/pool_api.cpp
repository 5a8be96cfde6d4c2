// The pool checkout calls of include/connleak/connleak.h. Called from
// python/connleak's adapters through ctypes (CDLL: GIL released; PyDLL: GIL
// held) or from a pool written in C: they only record, never run Python.
#include <link.h>

#include <atomic>
#include <cstring>
#include <string>
#include <utility>

#include "collector/core/checkouts.h"
#include "collector/core/fork_gate.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/string_table.h"
#include "collector/policy/redact.h"
#include "collector/util/logger.h"
#include "connleak/connleak.h"
#include "shim/hooks/real_symbol.h"
#include "shim/python/python_stack.h"
#include "shim/python/python_task.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/runtime/worker_thread.h"
#include "shim/track/capture.h"
#include "shim/track/pool_snapshot.h"
#include "shim/track/script_stack.h"
#include "shim/track/socket_table.h"

namespace connleak::shim {

namespace {

// The Registry key of a pooled connection named by the caller; 0 if unknown.
std::uintptr_t registry_key(int key_kind, unsigned long long key) {
  switch (key_kind) {
    case CONNLEAK_KEY_HANDLE:
      return static_cast<std::uintptr_t>(key);
    case CONNLEAK_KEY_FD: {
      if (key >= static_cast<unsigned long long>(sock::kMaxFds)) return 0;
      std::uint32_t slot = sock::g_conn_of[key].load(std::memory_order_acquire);
      return slot ? sock::key_of(slot - 1) : 0;
    }
    default:
      return 0;
  }
}

// Frames of the foreign-function layer between the program and us (libffi,
// CPython's _ctypes): noise at the top of every checkout's native stack.
struct ForeignRanges {
  ObjectRange ranges[4];
  int count = 0;
  bool contains(std::uintptr_t a) const {
    for (int i = 0; i < count; ++i)
      if (ranges[i].contains(a)) return true;
    return false;
  }
};

int collect_foreign(dl_phdr_info* info, std::size_t, void* data) {
  auto* out = static_cast<ForeignRanges*>(data);
  const char* name = info->dlpi_name ? info->dlpi_name : "";
  const char* base = std::strrchr(name, '/');
  base = base ? base + 1 : name;
  if (std::strncmp(base, "libffi.so", 9) != 0 && std::strncmp(base, "_ctypes.", 8) != 0) return 0;
  for (int i = 0; i < info->dlpi_phnum && out->count < 4; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD || !(ph.p_flags & PF_X)) continue;
    std::uintptr_t lo = info->dlpi_addr + ph.p_vaddr;
    out->ranges[out->count++] = {lo, lo + ph.p_memsz};
  }
  return 0;
}

// Found at the first checkout: by then ctypes (and libffi) is loaded if the
// caller uses it, and neither is ever unloaded.
const ForeignRanges& foreign_ranges() {
  return fork_safe_static([] {
    auto* r = new ForeignRanges;
    fork_gate::Walk walk;
    dl_iterate_phdr(&collect_foreign, r);
    return r;
  });
}

StackId checkout_native_stack(int depth) {
  StackId raw = capture_stack(depth + 8);
  const ForeignRanges& foreign = foreign_ranges();
  if (foreign.count == 0) return raw;
  auto frames = StackDepot::instance().get(raw);
  std::uintptr_t kept[kMaxFrames];
  std::size_t n = 0;
  for (std::uintptr_t a : frames)
    if (!foreign.contains(a) && n < static_cast<std::size_t>(depth) && n < kMaxFrames)
      kept[n++] = a;
  return n == frames.size() ? raw : StackDepot::instance().intern(kept, n);
}

}  // namespace

}  // namespace connleak::shim

using namespace connleak;
using namespace connleak::shim;

CONNLEAK_EXPORT unsigned long long connleak_pool_register(const char* kind, const char* name,
                                                          const char* target, int max_size) {
  if (!should_track()) return 0;
  Reentry guard;
  // Names and targets come from the program in any shape ("sqlalchemy#1",
  // an engine URL "mysql+pymysql://u:pw@h/db", a conninfo): passwords are
  // scrubbed from the text, which is otherwise kept as given.
  std::string safe_name = name ? scrub_value(name) : "";
  std::string safe_target = target ? scrub_value(target) : "";
  return CheckoutTable::instance().register_pool(kind ? kind : "unknown", safe_name.c_str(),
                                                 safe_target.c_str(), max_size);
}

CONNLEAK_EXPORT int connleak_pool_adopt(unsigned long long pool_id, int key_kind,
                                        unsigned long long key) {
  if (!should_track()) return -1;
  std::uintptr_t handle = registry_key(key_kind, key);
  if (!handle || !CheckoutTable::instance().has_pool(pool_id)) return -1;
  return Registry::instance().update(handle, [&](ConnRecord& r) { r.pool = pool_id; }) ? 0 : -1;
}

CONNLEAK_EXPORT unsigned long long connleak_checkout(unsigned long long pool_id, int key_kind,
                                                     unsigned long long key, const char* task) {
  if (!should_track()) return 0;
  Reentry guard;
  CheckoutRecord rec;
  rec.pool = pool_id;
  rec.checked_out = now();
  if (std::uintptr_t handle = registry_key(key_kind, key)) {
    Registry::instance().update(handle, [&](ConnRecord& r) {
      rec.connection = r.id;
      rec.connection_key = handle;
      if (!r.pool) r.pool = pool_id;  // lent by the pool: it is the pool's
    });
  }
  rec.thread = current_tid();
  rec.py_thread = current_python_thread();
  if (task && *task) rec.task = intern_string(task);
  const int depth = static_cast<int>(options().stack_depth);
  rec.py_stack = capture_script_stack(depth);
  // A Python caller's native frames are ctypes', libffi's (dropped anyway)
  // and the interpreter's own: no information, and unwinding them through
  // the interpreter was half the cost of a checkout (BENCHMARKS.md). Taken
  // for callers without a Python stack: a pool written in C.
  if (!rec.py_stack) rec.stack = checkout_native_stack(depth);
  std::uint64_t id = CheckoutTable::instance().on_checkout(rec);
  if (options().checkout_threshold.seconds > 0) ensure_worker_thread();
  return id;
}

// No vfork check here (a getpid() system call, ~6 % of a checkout + return):
// these are called by a pool, in Python or C, never by the few calls a vfork()
// child may make before exec. connleak_checkout asks should_track() alone too.
CONNLEAK_EXPORT int connleak_checkin(unsigned long long checkout_id, int how) {
  if (!options().enabled) return -1;
  CheckoutEnd end = how == CONNLEAK_RECLAIMED     ? CheckoutEnd::kReclaimed
                    : how == CONNLEAK_INVALIDATED ? CheckoutEnd::kInvalidated
                                                  : CheckoutEnd::kReturned;
  CheckoutRecord ended;
  if (!CheckoutTable::instance().on_checkin(checkout_id, end, now(), &ended)) return -1;
  if (ended.task_ref) drop_task_weakref(ended.task_ref);
  if (ended.alerted || end == CheckoutEnd::kReclaimed) {
    Reentry guard;
    report_checkout_end(ended);
  }
  return 0;
}

CONNLEAK_EXPORT int connleak_checkout_task(unsigned long long checkout_id, void* task) {
  if (!options().enabled || !task) return -1;
  Reentry guard;
  void* ref = task_weakref(task);
  if (!ref) return -1;
  bool attached = CheckoutTable::instance().update_open(checkout_id, [&](CheckoutRecord& r) {
    std::swap(r.task_ref, ref);  // a second call replaces the first task
  });
  if (ref) drop_task_weakref(ref);
  return attached ? 0 : -1;
}

CONNLEAK_EXPORT int connleak_pool_exhausted(unsigned long long pool_id, double waited_seconds) {
  if (!options().enabled || in_vfork_child()) return -1;
  if (!CheckoutTable::instance().has_pool(pool_id)) return -1;
  return write_pool_snapshot(pool_id, waited_seconds);
}
