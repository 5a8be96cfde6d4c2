#include "collector/core/fork_gate.h"

#include <time.h>

namespace connleak::fork_gate {

void prepare() {
  g_forking.store(true, std::memory_order_seq_cst);
  // Bounded: a walk that never ends (a thread stopped inside it) must not
  // hang the host's fork(); the child then risks what it would risk anyway.
  for (int i = 0; i < 100000 && g_inside.load(std::memory_order_seq_cst) != 0; ++i) {
    if (i < 1000) {
      sched_yield();
    } else {
      timespec ten_us{0, 10'000};
      nanosleep(&ten_us, nullptr);
    }
  }
}

void parent() {
  g_forking.store(false, std::memory_order_seq_cst);
}

void child() {
  g_inside.store(0, std::memory_order_relaxed);
  g_forking.store(false, std::memory_order_relaxed);
}

}  // namespace connleak::fork_gate
