#pragma once
// Captures the caller's native stack as raw return addresses and interns it.
// Symbolization happens only when a report is written.
#include "collector/core/stack_depot.h"

namespace connleak::shim {

// Frames inside libconnleak.so are dropped; at most `depth` frames are kept.
StackId capture_stack(int depth);

// The native stack and, in a host whose interpreter the shim reads (CPython,
// Ruby...), this thread's stack in that language (script_stack.h).
struct CapturedStacks {
  StackId native = 0;
  StackId script = 0;
};
CapturedStacks capture_stacks(int depth);

// Raw return addresses of this thread (libunwind when present), uninterned.
int raw_backtrace(void** frames, int max);

}  // namespace connleak::shim
