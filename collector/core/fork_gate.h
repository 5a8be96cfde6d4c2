#pragma once
// Sections that walk the dynamic loader's list of objects (dl_iterate_phdr,
// libunwind's unwinding, dladdr-heavy scans) hold glibc's dl_load_write_lock
// while they run. glibc's fork() resets its other loader locks in the child
// but not that one, so a fork() from another thread while the shim is inside
// such a walk leaves the child a lock nobody will release: its next dlclose or
// dl_iterate_phdr hangs (ForkSafety.ChildrenForkedDuringConnectStormConnectAndExit
// caught a child stuck in __dl_iterate_phdr under our dlclose hook).
//
// The gate keeps fork() and those walks apart: fork_prepare (after every
// ForkMutex is taken, so no thread waiting at the gate holds one) closes it
// and waits, bounded, until no walk is in progress; walks that start meanwhile
// wait until fork() has returned in the parent. The child, single-threaded,
// starts with the gate open and no walk in progress.
#include <sched.h>

#include <atomic>

namespace connleak::fork_gate {

inline constinit std::atomic<int> g_inside{0};
inline constinit std::atomic<bool> g_forking{false};

class Walk {
 public:
  Walk() {
    for (;;) {
      g_inside.fetch_add(1, std::memory_order_seq_cst);
      if (!g_forking.load(std::memory_order_seq_cst)) return;
      g_inside.fetch_sub(1, std::memory_order_seq_cst);
      while (g_forking.load(std::memory_order_seq_cst)) sched_yield();
    }
  }
  ~Walk() { g_inside.fetch_sub(1, std::memory_order_seq_cst); }
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;
};

// Called by the shim's pthread_atfork handlers (shim/runtime/runtime.cpp).
void prepare();  // closes the gate; waits at most ~1 s for walks in progress
void parent();
void child();

}  // namespace connleak::fork_gate
