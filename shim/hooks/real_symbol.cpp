#include "shim/hooks/real_symbol.h"

#include <dlfcn.h>
#include <link.h>

#include <atomic>
#include <mutex>

#include "collector/core/fork_gate.h"
#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/string_table.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {

const char* const kSymbolNames[kSymbolCount] = {
#define CONNLEAK_HOOK(name, ...) #name,
#define CONNLEAK_COMMAND(name, ...) #name,
#define CONNLEAK_CALL(name) #name,
#include "shim/hooks/libpq_symbols.inc"
#include "shim/hooks/mysql_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL
};

namespace {

using Entry = detail::CallerEntry;
constexpr int kEntries = 64;
Entry g_entries[kEntries];
std::atomic<int> g_used{0};
constinit ForkMutex g_insert_mutex;

struct RangeQuery {
  std::uintptr_t address;
  ObjectRange range;
  const char* name;
};

int find_object(dl_phdr_info* info, size_t, void* data) {
  auto* q = static_cast<RangeQuery*>(data);
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;
  bool hit = false;
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    std::uintptr_t end = start + ph.p_memsz;
    if (start < lo) lo = start;
    if (end > hi) hi = end;
    if (q->address >= start && q->address < end) hit = true;
  }
  if (!hit) return 0;
  q->range = {lo, hi};
  q->name = info->dlpi_name;
  return 1;
}

bool is_ours(const void* fn) {
  const ObjectRange& self = fork_safe_static(
      [] { return new ObjectRange(object_range_of(reinterpret_cast<const void*>(&is_ours))); });
  return self.contains(reinterpret_cast<std::uintptr_t>(fn));
}

// dlclose without going through our own dlclose hook (which would drop the cache).
void close_handle(void* handle) {
  if (DlcloseFn real = real_dlclose()) real(handle);
}

Resolution lookup(const char* caller_path, const ObjectRange& caller, SymbolId id) {
  Resolution r;
  const char* name = kSymbolNames[id];
  // RTLD_NOLOAD: only a handle to what is already loaded, never a new load.
  // The main program's handle (path "") is the global scope, where the first
  // match is our own hook: then the next definition after us is the real one.
  void* handle =
      dlopen(caller_path && caller_path[0] ? caller_path : nullptr, RTLD_LAZY | RTLD_NOLOAD);
  void* sym = handle ? dlsym(handle, name) : nullptr;
  if (handle) close_handle(handle);
  if (!sym || is_ours(sym)) sym = dlsym(RTLD_NEXT, name);
  if (!sym || is_ours(sym)) return r;
  r.real = sym;
  r.self_call = caller.contains(reinterpret_cast<std::uintptr_t>(sym));
  Dl_info info{};
  r.module = intern_string(dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "");
  return r;
}

// The client-library copy whose real function a hook of ours is about to run
// on this thread: the most recent resolution. A library function that ends in
// a tail jump to another of its exported functions (libmariadb's mysql_query
// is `jmp mysql_real_query@plt`) enters that hook with the return address of
// ITS caller, which is then our own hook (or the program, for a pointer it got
// from dlsym): a scope where the definition is not, or only ours is.
using detail::t_active_module;

struct ObjectNames {
  static constexpr int kMax = 512;
  const char* names[kMax];
  int count = 0;
  std::uintptr_t self_lo = 0;
};

int collect_names(dl_phdr_info* info, size_t, void* data) {
  auto* n = static_cast<ObjectNames*>(data);
  // The main program and the vDSO have no path to open; ours only holds hooks.
  if (!info->dlpi_name || !info->dlpi_name[0] || n->count >= ObjectNames::kMax) return 0;
  if (info->dlpi_addr == n->self_lo) return 0;
  n->names[n->count++] = info->dlpi_name;
  return 0;
}

// A definition of `name` other than ours anywhere in the process, RTLD_LOCAL
// copies included: `preferred` (a module path) first, else the first loaded
// object that has one. Only for calls that came through a tail jump, so the
// copy that jumped is the one the thread is running in, which `preferred` names.
void* search_everywhere(const char* name, const char* preferred) {
  if (preferred && preferred[0]) {
    if (void* handle = dlopen(preferred, RTLD_LAZY | RTLD_NOLOAD)) {
      void* sym = dlsym(handle, name);
      close_handle(handle);
      if (sym && !is_ours(sym)) return sym;
    }
  }
  static ObjectNames names;  // large: not on a hook's stack; filled under the lock below
  static constinit ForkMutex mutex;
  std::lock_guard<ForkMutex> lock(mutex);
  names.count = 0;
  Dl_info self{};
  dladdr(reinterpret_cast<const void*>(&is_ours), &self);
  names.self_lo = reinterpret_cast<std::uintptr_t>(self.dli_fbase);
  // Names are copied out first: dlopen must not run inside dl_iterate_phdr.
  {
    fork_gate::Walk walk;
    dl_iterate_phdr(&collect_names, &names);
  }
  for (int i = 0; i < names.count; ++i) {
    void* handle = dlopen(names.names[i], RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) continue;
    void* sym = dlsym(handle, name);
    close_handle(handle);
    if (sym && !is_ours(sym)) return sym;
  }
  return nullptr;
}

Resolution from_tail_jump(SymbolId id, const char* preferred) {
  Resolution r;
  void* sym = search_everywhere(kSymbolNames[id], preferred);
  if (!sym) return r;
  r.real = sym;
  // The library jumped to its own function: a self-call, passed through.
  r.self_call = true;
  Dl_info info{};
  r.module = intern_string(dladdr(sym, &info) && info.dli_fname ? info.dli_fname : "");
  return r;
}

Entry* find_entry(std::uintptr_t a) {
  int used = g_used.load(std::memory_order_acquire);
  for (int i = 0; i < used; ++i) {
    Entry& e = g_entries[i];
    if (a >= e.lo.load(std::memory_order_relaxed) && a < e.hi.load(std::memory_order_acquire))
      return &e;
  }
  return nullptr;
}

}  // namespace

ObjectRange object_range_of(const void* address) {
  RangeQuery q{reinterpret_cast<std::uintptr_t>(address), {}, nullptr};
  {
    fork_gate::Walk walk;
    dl_iterate_phdr(&find_object, &q);
  }
  return q.range;
}

namespace detail {
std::atomic<CallerEntry*> g_hint[kSymbolCount];
__thread const char* t_active_module __attribute__((tls_model("initial-exec"))) = nullptr;

// The hint missed: scan the table (the caller's object is nearly always the
// first entry or two); a hit becomes the symbol's hint.
const Resolution* resolve_hit_slow(SymbolId id, std::uintptr_t a) {
  Entry* e = find_entry(a);
  if (!e || !e->ready[id].load(std::memory_order_acquire)) return nullptr;
  g_hint[id].store(e, std::memory_order_relaxed);
  const Resolution& r = e->res[id];
  if (r.real) t_active_module = r.module;
  return &r;
}
}  // namespace detail

namespace {
// A libpq hook's PQtransactionStatus, from the same copy (after_command calls
// it after every command): looked up once with the resolution. The libpq
// hooks come first in the symbol ids, before the functions only called.
void attach_txn_status(SymbolId id, Resolution& r) {
  if (r.real && id < kSym_PQtransactionStatus && r.module && r.module[0])
    r.txn_status = resolve_in(r.module, kSym_PQtransactionStatus);
}
}  // namespace

__attribute__((noinline)) Resolution resolve_miss(SymbolId id, const void* caller) {
  auto a = reinterpret_cast<std::uintptr_t>(caller);
  if (is_ours(caller)) {
    // A real function one of our hooks called jumped here (see t_active_module):
    // the answer depends on the thread, never cached per caller.
    Reentry guard;
    Resolution r = from_tail_jump(id, t_active_module);
    if (r.real) t_active_module = r.module;
    return r;
  }
  Entry* e = find_entry(a);
  Reentry guard;  // dlopen/dlsym below may reach other hooks of ours
  RangeQuery q{a, {}, nullptr};
  {
    fork_gate::Walk walk;
    dl_iterate_phdr(&find_object, &q);
  }
  if (!e) {
    std::lock_guard<ForkMutex> lock(g_insert_mutex);
    e = find_entry(a);
    if (!e && q.range.hi != 0) {
      int used = g_used.load(std::memory_order_relaxed);
      if (used < kEntries) {
        e = &g_entries[used];
        e->path = intern_string(q.name ? q.name : "");
        e->lo.store(q.range.lo, std::memory_order_relaxed);
        e->hi.store(q.range.hi, std::memory_order_release);
        g_used.store(used + 1, std::memory_order_release);
      }
    }
  }
  // No entry (unknown caller or a full table): resolve uncached. Correct, slower.
  Resolution r =
      lookup(e ? e->path : q.name, e ? ObjectRange{e->lo.load(), e->hi.load()} : q.range, id);
  // Nothing in the caller's scope: the caller called a library function
  // through a pointer (dlsym of an RTLD_LOCAL copy) and that function jumped
  // here. Cached: the same caller comes the same way.
  if (!r.real) r = from_tail_jump(id, t_active_module);
  if (r.real) t_active_module = r.module;
  attach_txn_status(id, r);
  if (e) {
    // Written once: readers hold res[id] by reference without a lock.
    std::lock_guard<ForkMutex> lock(g_insert_mutex);
    if (!e->ready[id].load(std::memory_order_relaxed)) {
      e->res[id] = r;
      e->ready[id].store(true, std::memory_order_release);
      detail::g_hint[id].store(e, std::memory_order_relaxed);
    }
  }
  return r;
}

void note_active_module(const char* module) {
  if (module && module[0]) t_active_module = module;
}

void reset_module_cache();

void retire_unloaded_objects() {
  std::lock_guard<ForkMutex> lock(g_insert_mutex);
  int used = g_used.load(std::memory_order_relaxed);
  for (int i = 0; i < used; ++i) {
    Entry& e = g_entries[i];
    std::uintptr_t lo = e.lo.load(std::memory_order_relaxed);
    std::uintptr_t hi = e.hi.load(std::memory_order_relaxed);
    if (hi == 0) continue;
    ObjectRange now = object_range_of(reinterpret_cast<const void*>(lo));
    if (now.lo != lo || now.hi != hi) e.hi.store(0, std::memory_order_release);
  }
  reset_module_cache();
}

void close_dl_handle(void* handle) {
  close_handle(handle);
}

namespace {
// Per library copy, looked up once per symbol; append-only like the caller cache.
struct ModuleEntry {
  std::atomic<const char*> module{nullptr};
  std::atomic<bool> resolved[kSymbolCount] = {};
  std::atomic<void*> fn[kSymbolCount] = {};
};
constexpr int kModules = 16;
ModuleEntry g_modules[kModules];
std::atomic<int> g_modules_used{0};
constinit ForkMutex g_modules_mutex;

void* lookup_in(const char* module, SymbolId id) {
  void* handle = dlopen(module, RTLD_LAZY | RTLD_NOLOAD);
  if (!handle) return nullptr;
  void* sym = dlsym(handle, kSymbolNames[id]);
  close_handle(handle);
  return sym && !is_ours(sym) ? sym : nullptr;
}
}  // namespace

// A library copy unloaded and loaded again under the same path moves: look again.
void reset_module_cache() {
  int modules = g_modules_used.load(std::memory_order_relaxed);
  for (int i = 0; i < modules; ++i)
    for (auto& flag : g_modules[i].resolved) flag.store(false, std::memory_order_release);
}

namespace {
__attribute__((noinline)) void* resolve_in_slow(const char* module, SymbolId id) {
  Reentry guard;
  int used;
  ModuleEntry* e = nullptr;
  {
    std::lock_guard<ForkMutex> lock(g_modules_mutex);
    used = g_modules_used.load(std::memory_order_relaxed);
    for (int i = 0; i < used && !e; ++i)
      if (g_modules[i].module.load(std::memory_order_relaxed) == module) e = &g_modules[i];
    if (!e && used < kModules) {
      e = &g_modules[used];
      e->module.store(module, std::memory_order_relaxed);
      g_modules_used.store(used + 1, std::memory_order_release);
    }
  }
  void* fn = lookup_in(module, id);
  if (e) {
    e->fn[id].store(fn, std::memory_order_relaxed);
    e->resolved[id].store(true, std::memory_order_release);
  }
  return fn;
}
}  // namespace

// After every command (PQtransactionStatus): a scan of a few entries and two
// loads; the lookup and the lock are resolve_in_slow's.
void* resolve_in(const char* module, SymbolId id) {
  if (!module || !module[0]) return nullptr;
  // The first entry is the process's libpq (or MySQL client): one copy in
  // nearly every program.
  if (g_modules[0].module.load(std::memory_order_relaxed) == module &&
      g_modules[0].resolved[id].load(std::memory_order_acquire))
    return g_modules[0].fn[id].load(std::memory_order_relaxed);
  int used = g_modules_used.load(std::memory_order_acquire);
  for (int i = 0; i < used; ++i) {
    ModuleEntry& e = g_modules[i];
    if (e.module.load(std::memory_order_relaxed) != module) continue;
    if (e.resolved[id].load(std::memory_order_acquire))
      return e.fn[id].load(std::memory_order_relaxed);
    break;
  }
  return resolve_in_slow(module, id);
}

}  // namespace connleak::shim
