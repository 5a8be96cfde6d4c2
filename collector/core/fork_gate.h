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

// This thread's walks in progress: fork() from a signal handler that
// interrupted one of them must not wait for it (it resumes only after fork).
inline constinit thread_local int t_walks __attribute__((tls_model("initial-exec"))) = 0;

// One loader walk; the same handshake as shim::own::HostCall (collector/core/gate.h).
class Walk : Gate::Pass {
 public:
  Walk() : Gate::Pass(g_gate) { ++t_walks; }
  ~Walk() { --t_walks; }
  Walk(const Walk&) = delete;
  Walk& operator=(const Walk&) = delete;
};

// Called by the shim's pthread_atfork handlers (shim/runtime/runtime.cpp).
// prepare() closes the gate and waits, at most budget_ns, until no other
// thread is inside a walk; false when one still was (the child may then have
// inherited the loader's lock held, and turns the shim off).
bool prepare();
bool prepare(long long budget_ns);  // tests: a shorter wait
void parent();
void child();
// What the last prepare() found, for the child.
bool walks_finished_at_last_fork();

}  // namespace connleak::fork_gate
