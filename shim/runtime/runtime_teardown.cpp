#include "shim/runtime/runtime_teardown.h"

#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <cstdint>

#include "shim/track/capture.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {

namespace {

// Exported by the runtime's executable (perl, php) or its shared library, so
// dlsym finds them and the symbol table gives their size. Ruby is absent: its
// cleanup (rb_ec_cleanup) is static, called straight from ruby_run_node, and
// rb_during_gc() is false while Ruby 3.1 frees the objects left at exit.
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
std::atomic<int> g_state{0};  // 0: not looked up, 1: looking, 2: done

void look_up() {
  int found = 0;
  for (const char* name : kTeardownFunctions) {
    void* fn = dlsym(RTLD_DEFAULT, name);
    Dl_info info{};
    void* entry = nullptr;
    if (!fn || !dladdr1(fn, &info, &entry, RTLD_DL_SYMENT) || !entry) continue;
    const auto* sym = static_cast<const ElfW(Sym)*>(entry);
    if (sym->st_size == 0) continue;
    auto lo = reinterpret_cast<std::uintptr_t>(fn);
    g_ranges[found++] = {lo, lo + sym->st_size};
  }
  g_found = found;
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
  if (g_found == 0) return false;  // not a Perl or PHP host: no unwind at all
  // Global destruction sits well below the close: interpreter loops, the
  // driver's destructor, the client library.
  constexpr int kDepth = 128;
  void* frames[kDepth];
  int n = raw_backtrace(frames, kDepth);
  for (int i = 0; i < n; ++i) {
    auto a = reinterpret_cast<std::uintptr_t>(frames[i]);
    for (int k = 0; k < g_found; ++k)
      if (a > g_ranges[k].lo && a <= g_ranges[k].hi)
        return true;  // return addresses follow the call
  }
  return false;
}

}  // namespace connleak::shim
