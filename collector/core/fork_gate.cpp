#include "collector/core/fork_gate.h"

#include <sched.h>
#include <time.h>

#include "collector/util/timeutil.h"

namespace connleak::fork_gate {

namespace {
// Walks never wait on the forking thread (they hold no lock of ours and call
// no host code), so a running walker finishes in microseconds; the bound is
// for a walker that cannot run at all.
constexpr long long kBudgetNs = 5'000'000'000;
constinit bool g_finished = true;  // only touched by the forking thread
}  // namespace

bool prepare() {
  return prepare(kBudgetNs);
}

bool prepare(long long budget_ns) {
  g_gate.close();
  const long long deadline = mono_now_ns() + budget_ns;
  bool finished = false;
  for (int i = 0;; ++i) {
    // Only other threads' walks: the caller's own are paused under it.
    if (g_gate.inside() <= t_walks) {
      finished = true;
      break;
    }
    if (mono_now_ns() >= deadline) break;
    if (i < 1000) {
      sched_yield();
    } else {
      timespec ten_us{0, 10'000};
      nanosleep(&ten_us, nullptr);
    }
  }
  g_finished = finished;
  return finished;
}

void parent() {
  g_gate.open();
}

void child() {
  g_gate.reset_in_child();
}

bool walks_finished_at_last_fork() {
  return g_finished;
}

}  // namespace connleak::fork_gate
