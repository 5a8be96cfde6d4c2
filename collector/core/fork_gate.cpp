#include "collector/core/fork_gate.h"

#include <sched.h>
#include <time.h>

namespace connleak::fork_gate {

void prepare() {
  g_gate.close();
  // Bounded: a walk that never ends (a thread stopped inside it) must not
  // hang the host's fork(); the child then risks what it would risk anyway.
  for (int i = 0; i < 100000 && !g_gate.empty(); ++i) {
    if (i < 1000) {
      sched_yield();
    } else {
      timespec ten_us{0, 10'000};
      nanosleep(&ten_us, nullptr);
    }
  }
}

void parent() {
  g_gate.open();
}

void child() {
  g_gate.reset_in_child();
}

}  // namespace connleak::fork_gate
