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
#include "collector/core/gate.h"

namespace connleak::fork_gate {

inline constinit Gate g_gate;

// One loader walk; the same handshake as shim::own::HostCall (collector/core/gate.h).
class Walk : Gate::Pass {
 public:
  Walk() : Gate::Pass(g_gate) {}
};

// Called by the shim's pthread_atfork handlers (shim/runtime/runtime.cpp).
void prepare();  // closes the gate; waits at most ~1 s for walks in progress
void parent();
void child();

}  // namespace connleak::fork_gate
