#include "shim/track/capture.h"

#include <dlfcn.h>
#include <execinfo.h>

#include <atomic>

#include "collector/core/fork_gate.h"
#include "collector/core/fork_safe_static.h"
#include "shim/hooks/real_symbol.h"
#include "shim/track/script_stack.h"

namespace connleak::shim {

namespace {

using BacktraceFn = int (*)(void**, int);

// libunwind is opened RTLD_LOCAL instead of linked: as a plain dependency its
// _Unwind_* symbols would enter the global scope and libstdc++ would throw
// every C++ exception of the host through libunwind instead of libgcc_s.
// unw_backtrace costs ~0.3 us for 35 frames; glibc backtrace() ~4.5 us, so the
// latter is only the fallback when libunwind is not installed.
BacktraceFn load_backtrace() {
  void* lib = dlopen("libunwind.so.8", RTLD_NOW | RTLD_LOCAL);
  if (lib) {
    if (void* fn = dlsym(lib, "unw_backtrace")) return reinterpret_cast<BacktraceFn>(fn);
  }
  return &::backtrace;
}

// The dlopen runs under fork_safe_static's ForkMutex: a fork() from another
// thread waits for it, so no child inherits the loader's tables mid-update
// (glibc's ld.so then asserts on the child's next dlopen).
BacktraceFn backtrace_fn() {
  return fork_safe_static([] { return new BacktraceFn(load_backtrace()); });
}

const ObjectRange& shim_range() {
  return fork_safe_static(
      [] { return new ObjectRange(object_range_of(reinterpret_cast<const void*>(&shim_range))); });
}

}  // namespace

namespace {
// How many of our own frames sit above the caller's, at most, learned from
// the captures themselves: 4 on a Release build's connect, 5 on its close,
// more in a Debug build (nothing inlined). Each frame walked costs ~80
// instructions of libunwind's, so a fixed allowance for the worst build
// (9) walked 4-5 frames a capture for nothing.
constexpr int kMinSlack = 3;
constexpr int kMaxSlack = 24;
std::atomic<int> g_slack{kMinSlack};

int walk(void** raw, int max) {
  fork_gate::Walk walk;  // libunwind finds each frame's tables with dl_iterate_phdr
  return backtrace_fn()(raw, max);
}
}  // namespace

StackId capture_stack(int depth) {
  if (depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
  void* raw[kMaxFrames + kMaxSlack];
  std::uintptr_t frames[kMaxFrames];
  const ObjectRange& self = shim_range();
  int slack = g_slack.load(std::memory_order_relaxed);
  for (;;) {
    const int want = depth + slack;
    const int n = walk(raw, want);
    int kept = 0;
    for (int i = 0; i < n && kept < depth; ++i) {
      auto a = reinterpret_cast<std::uintptr_t>(raw[i]);
      if (a == 0 || self.contains(a)) continue;
      frames[kept++] = a;
    }
    // Short of `depth` although the walk stopped at our limit, not at the
    // stack's end: more of our frames than allowed for. Allow for them (all
    // later captures too) and walk again.
    if (kept < depth && n == want && slack < kMaxSlack) {
      const int ours = n - kept;  // > slack here
      const int needed = ours < kMaxSlack ? ours : kMaxSlack;
      int seen = g_slack.load(std::memory_order_relaxed);
      while (seen < needed &&
             !g_slack.compare_exchange_weak(seen, needed, std::memory_order_relaxed)) {
      }
      slack = needed;
      continue;
    }
    return StackDepot::instance().intern(frames, static_cast<std::size_t>(kept));
  }
}

int raw_backtrace(void** frames, int max) {
  return walk(frames, max);
}

CapturedStacks capture_stacks(int depth) {
  return {capture_stack(depth), capture_script_stack(depth)};
}

}  // namespace connleak::shim
