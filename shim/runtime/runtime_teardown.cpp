#include "shim/runtime/runtime_teardown.h"

#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cstdint>
#include <cstring>

#include "shim/runtime/guard.h"
#include "shim/track/capture.h"

namespace connleak::shim {

namespace {

// Exported by the runtime's executable (perl, php) or its shared library, so
// dlsym finds them and the symbol table gives their size. Ruby's cleanup
// (rb_ec_cleanup) is static: see find_ruby_cleanup_calls.
constexpr const char* kTeardownFunctions[] = {
    "perl_destruct",         // Perl: global destruction of the interpreter
    "php_request_shutdown",  // PHP: the request's objects and non-persistent links
    "php_module_shutdown",   // PHP: persistent links, extensions
};
constexpr int kCount = sizeof(kTeardownFunctions) / sizeof(kTeardownFunctions[0]);

struct Range {
  std::uintptr_t lo = 0, hi = 0;
};
Range g_ranges[kCount];
int g_found = 0;
// Return addresses of ruby_run_node's calls to Ruby's cleanup: one of them is
// on the stack exactly while Ruby shuts down (at_exit blocks, then the objects
// left at exit freed: pg's connections closed by their free function).
constexpr int kMaxRubyCalls = 4;
std::uintptr_t g_ruby_returns[kMaxRubyCalls];
int g_ruby_found = 0;

bool symbol_range(const char* name, Range& out) {
  void* fn = dlsym(RTLD_DEFAULT, name);
  Dl_info info{};
  void* entry = nullptr;
  if (!fn || !dladdr1(fn, &info, &entry, RTLD_DL_SYMENT) || !entry) return false;
  const auto* sym = static_cast<const ElfW(Sym)*>(entry);
  if (sym->st_size < 5) return false;
  out.lo = reinterpret_cast<std::uintptr_t>(fn);
  out.hi = out.lo + sym->st_size;
  return true;
}

// x86-64 `call rel32` (E8) / `jmp rel32` (E9) at `p`: its target.
std::uintptr_t branch_target(std::uintptr_t p) {
  std::int32_t rel;
  std::memcpy(&rel, reinterpret_cast<const void*>(p + 1), sizeof rel);
  return p + 5 + static_cast<std::intptr_t>(rel);
}

// Ruby (the `ruby` executable and embedders using ruby_run_node): ruby_run_node
// runs the program, then calls the static rb_ec_cleanup; the exported
// ruby_cleanup is a thin wrapper around the same static function (a tail jump
// in Debian's Ruby 3.1). So the cleanup is the branch target that both
// exported functions share, and the return addresses of ruby_run_node's calls
// to it mark the teardown. Only the two functions' own bytes are read (their
// sizes come from the dynamic symbol table); a byte pattern that merely looks
// like a branch would have to hit the same target from both functions.
// Other architectures: no Ruby teardown detection (the leak is reported as
// closed, as before).
void find_ruby_cleanup_calls() {
#if defined(__x86_64__)
  Range run, cleanup;
  if (!symbol_range("ruby_run_node", run) || !symbol_range("ruby_cleanup", cleanup)) return;
  std::uintptr_t targets[16];
  int n_targets = 0;
  for (std::uintptr_t p = cleanup.lo; p + 5 <= cleanup.hi && n_targets < 16; ++p) {
    const auto op = *reinterpret_cast<const unsigned char*>(p);
    if (op == 0xE8 || op == 0xE9) targets[n_targets++] = branch_target(p);
  }
  for (std::uintptr_t p = run.lo; p + 5 <= run.hi && g_ruby_found < kMaxRubyCalls; ++p) {
    if (*reinterpret_cast<const unsigned char*>(p) != 0xE8) continue;
    const std::uintptr_t target = branch_target(p);
    // Both also call __tls_get_addr (for the execution context): a return
    // address after that call is on the stack only inside that call, never
    // below a close, so sharing it is harmless.
    for (int t = 0; t < n_targets; ++t)
      if (targets[t] == target) {
        g_ruby_returns[g_ruby_found++] = p + 5;
        break;
      }
  }
#endif
}
std::atomic<int> g_state{0};  // 0: not looked up, 1: looking, 2: done

void look_up() {
  int found = 0;
  for (const char* name : kTeardownFunctions)
    if (symbol_range(name, g_ranges[found])) ++found;
  g_found = found;
  find_ruby_cleanup_calls();
}

}  // namespace

bool runtime_tearing_down() {
  int state = g_state.load(std::memory_order_acquire);
  if (state != 2) {
    int expected = 0;
    // The first caller looks up; a racing one answers "no" rather than wait.
    if (!g_state.compare_exchange_strong(expected, 1, std::memory_order_acq_rel)) return false;
    Reentry guard;
    look_up();
    g_state.store(2, std::memory_order_release);
  }
  if (g_found == 0 && g_ruby_found == 0) return false;  // not Perl, PHP or Ruby: no unwind at all
  // Global destruction sits well below the close: interpreter loops, the
  // driver's destructor, the client library.
  constexpr int kDepth = 128;
  void* frames[kDepth];
  int n = raw_backtrace(frames, kDepth);
  for (int i = 0; i < n; ++i) {
    auto a = reinterpret_cast<std::uintptr_t>(frames[i]);
    for (int k = 0; k < g_ruby_found; ++k)
      if (a == g_ruby_returns[k]) return true;
    for (int k = 0; k < g_found; ++k)
      if (a > g_ranges[k].lo && a <= g_ranges[k].hi)
        return true;  // return addresses follow the call
  }
  return false;
}

}  // namespace connleak::shim
