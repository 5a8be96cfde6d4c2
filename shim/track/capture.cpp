#include "shim/track/capture.h"

#include <dlfcn.h>
#include <execinfo.h>

#include <atomic>

#include "shim/python/python_stack.h"
#include "shim/hooks/real_symbol.h"

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

BacktraceFn backtrace_fn() {
  static std::atomic<BacktraceFn> cached{nullptr};
  BacktraceFn fn = cached.load(std::memory_order_acquire);
  if (!fn) {
    fn = load_backtrace();  // racing threads load the same thing; dlopen is refcounted
    cached.store(fn, std::memory_order_release);
  }
  return fn;
}

const ObjectRange& shim_range() {
  static const ObjectRange range = object_range_of(reinterpret_cast<const void*>(&shim_range));
  return range;
}

}  // namespace

StackId capture_stack(int depth) {
  if (depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
  // Room for our own frames on top of the requested depth (hook, body, the
  // no-throw wrapper and its lambda when not inlined, tracking helper,
  // capture: at most 7 deep today).
  constexpr int kSlack = 9;
  void* raw[kMaxFrames + kSlack];
  int n = backtrace_fn()(raw, depth + kSlack);
  std::uintptr_t frames[kMaxFrames];
  int kept = 0;
  const ObjectRange& self = shim_range();
  for (int i = 0; i < n && kept < depth; ++i) {
    auto a = reinterpret_cast<std::uintptr_t>(raw[i]);
    if (a == 0 || self.contains(a)) continue;
    frames[kept++] = a;
  }
  return StackDepot::instance().intern(frames, static_cast<std::size_t>(kept));
}

int raw_backtrace(void** frames, int max) {
  return backtrace_fn()(frames, max);
}

CapturedStacks capture_stacks(int depth) {
  return {capture_stack(depth), capture_python_stack(depth)};
}

}  // namespace connleak::shim
