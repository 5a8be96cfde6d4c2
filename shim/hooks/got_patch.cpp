#include "shim/hooks/got_patch.h"

#include <dlfcn.h>
#include <elf.h>
#include <link.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

#include "collector/core/fork_mutex.h"
#include "collector/util/logger.h"
#include "shim/hooks/real_symbol.h"

extern "C" {
using ConnleakDlsymFn = void* (*)(void*, const char*);
using ConnleakDlopenFn = void* (*)(const char*, int);
__attribute__((visibility("hidden"))) ConnleakDlsymFn
connleak_init_real_dlsym();  // hooks_dlsym.cpp
__attribute__((visibility("hidden"))) ConnleakDlopenFn connleak_init_real_dlopen();  // hooks_dl.cpp
}

namespace connleak::shim::got {

namespace {

// Every name the shim interposes: the same lists the exports come from.
constexpr const char* kHooked[] = {
#define CONNLEAK_HOOK(name, ...) #name,
#define CONNLEAK_COMMAND(name, ...) #name,
#define CONNLEAK_CALL(name)
#include "shim/hooks/libpq_symbols.inc"
#include "shim/hooks/mysql_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL
#define CONNLEAK_LIBC(name, ...) #name,
#include "shim/hooks/libc_symbols.inc"
#undef CONNLEAK_LIBC
    "dlsym",   // dlsym_hook.S
    "dlopen",  // dlopen_hook.S: a deep-bound object's own DEEPBIND loads are seen too
};

struct Hook {
  const char* name;
  void* fn;
};

// An object as dl_iterate_phdr described it, copied out of the callback: the
// loader's lock is held there, and opening a handle (which takes the other
// loader lock) inside it could deadlock against a concurrent dlopen.
struct Object {
  std::string name;
  std::uintptr_t base = 0;
  std::uintptr_t lo = UINTPTR_MAX, hi = 0;    // span of its PT_LOAD segments
  std::uintptr_t relro_lo = 0, relro_hi = 0;  // pages the loader made read-only
  bool contains(const void* p) const {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    return a >= lo && a < hi;
  }
};

struct Collect {
  const std::vector<std::uintptr_t>* before;
  std::uintptr_t self_base;
  std::vector<Object>* out;
};

std::uintptr_t page_size() {
  static const auto size = static_cast<std::uintptr_t>(sysconf(_SC_PAGESIZE));
  return size;
}

int collect(dl_phdr_info* info, size_t, void* data) {
  auto* c = static_cast<Collect*>(data);
  if (std::binary_search(c->before->begin(), c->before->end(), info->dlpi_addr)) return 0;
  const char* name = info->dlpi_name;
  // The main program was there before any dlopen; the vDSO and the loader
  // bind nothing through a GOT we should touch; the shim only holds hooks.
  if (!name || !name[0] || info->dlpi_addr == c->self_base || std::strstr(name, "linux-vdso") ||
      std::strstr(name, "/ld-linux"))
    return 0;
  Object o;
  o.name = name;
  o.base = info->dlpi_addr;
  const std::uintptr_t ps = page_size();
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    const std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (ph.p_type == PT_LOAD) {
      o.lo = std::min(o.lo, start);
      o.hi = std::max(o.hi, start + ph.p_memsz);
    } else if (ph.p_type == PT_GNU_RELRO) {
      // The loader protects whole pages from the start's page to the end
      // rounded DOWN (_dl_protect_relro): the last partial page stays writable.
      o.relro_lo = start & ~(ps - 1);
      o.relro_hi = (start + ph.p_memsz) & ~(ps - 1);
    }
  }
  c->out->push_back(std::move(o));
  return 0;
}

std::uintptr_t self_base() {
  Dl_info info{};
  dladdr(reinterpret_cast<const void*>(&loaded_objects), &info);
  return reinterpret_cast<std::uintptr_t>(info.dli_fbase);
}

// Our hooks' addresses, looked up by name in the shim's own handle (each is
// exported), sorted for binary search. Built once, under the patch lock.
const std::vector<Hook>& hooks(ConnleakDlopenFn real_dlopen, ConnleakDlsymFn real_dlsym) {
  static std::vector<Hook>* table = nullptr;
  if (table) return *table;
  auto* t = new std::vector<Hook>();
  Dl_info info{};
  void* self = dladdr(reinterpret_cast<const void*>(&loaded_objects), &info) && info.dli_fname
                   ? real_dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD)
                   : nullptr;
  if (self) {
    for (const char* name : kHooked)
      if (void* fn = real_dlsym(self, name)) t->push_back({name, fn});
    // The shim is never unloaded (-z nodelete): the reference can stay.
  }
  std::sort(t->begin(), t->end(),
            [](const Hook& a, const Hook& b) { return std::strcmp(a.name, b.name) < 0; });
  table = t;
  return *table;
}

void* find_hook(const std::vector<Hook>& table, const char* name) {
  auto it = std::lower_bound(table.begin(), table.end(), name, [](const Hook& h, const char* n) {
    return std::strcmp(h.name, n) < 0;
  });
  return it != table.end() && std::strcmp(it->name, name) == 0 ? it->fn : nullptr;
}

// One aligned 8-byte store (atomic on x86-64: a thread calling through the
// slot sees the old or the new target, never half of each). A read-only RELRO
// page is writable only for the store.
bool store(void** slot, void* value, const Object& o) {
  const auto a = reinterpret_cast<std::uintptr_t>(slot);
  const bool protected_page = a >= o.relro_lo && a < o.relro_hi;
  void* page = reinterpret_cast<void*>(a & ~(page_size() - 1));
  if (protected_page && mprotect(page, page_size(), PROT_READ | PROT_WRITE) != 0) return false;
  __atomic_store_n(slot, value, __ATOMIC_RELEASE);
  if (protected_page) mprotect(page, page_size(), PROT_READ);
  return true;
}

// Rewrites one object's qualifying slots (see got_patch.h).
std::size_t patch_object(const Object& o, void* handle, const link_map* lm,
                         const std::vector<Hook>& table, ConnleakDlsymFn real_dlsym) {
  const std::uintptr_t base = lm->l_addr;
  // glibc relocates the dynamic section's addresses in place, except where
  // the section is read-only: take either form.
  auto addr = [base](ElfW(Addr) v) { return v < base ? v + base : v; };
  const ElfW(Sym)* symtab = nullptr;
  const char* strtab = nullptr;
  std::size_t strsz = 0, pltrelsz = 0, relasz = 0;
  const ElfW(Rela)* jmprel = nullptr;
  const ElfW(Rela)* rela = nullptr;
  ElfW(Sxword) pltrel = 0;
  for (const ElfW(Dyn)* d = lm->l_ld; d && d->d_tag != DT_NULL; ++d) {
    switch (d->d_tag) {
      case DT_SYMTAB:
        symtab = reinterpret_cast<const ElfW(Sym)*>(addr(d->d_un.d_ptr));
        break;
      case DT_STRTAB:
        strtab = reinterpret_cast<const char*>(addr(d->d_un.d_ptr));
        break;
      case DT_STRSZ:
        strsz = d->d_un.d_val;
        break;
      case DT_JMPREL:
        jmprel = reinterpret_cast<const ElfW(Rela)*>(addr(d->d_un.d_ptr));
        break;
      case DT_PLTRELSZ:
        pltrelsz = d->d_un.d_val;
        break;
      case DT_PLTREL:
        pltrel = static_cast<ElfW(Sxword)>(d->d_un.d_val);
        break;
      case DT_RELA:
        rela = reinterpret_cast<const ElfW(Rela)*>(addr(d->d_un.d_ptr));
        break;
      case DT_RELASZ:
        relasz = d->d_un.d_val;
        break;
      default:
        break;
    }
  }
  if (!symtab || !strtab) return 0;
  std::size_t patched = 0;
  auto visit = [&](const ElfW(Rela) * r, std::size_t count) {
    for (std::size_t i = 0; i < count; ++i) {
      const auto type = ELF64_R_TYPE(r[i].r_info);
      if (type != R_X86_64_JUMP_SLOT && type != R_X86_64_GLOB_DAT) continue;
      const ElfW(Sym)& sym = symtab[ELF64_R_SYM(r[i].r_info)];
      // A name the object defines itself is its own business.
      if (sym.st_name == 0 || sym.st_name >= strsz || sym.st_shndx != SHN_UNDEF) continue;
      const char* name = strtab + sym.st_name;
      void* hook = find_hook(table, name);
      if (!hook) continue;
      auto** slot = reinterpret_cast<void**>(base + r[i].r_offset);
      void* now = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
      if (now == hook) continue;
      // What the object's own scope resolves the name to: its deep binding.
      void* expected = real_dlsym(handle, name);
      if (!expected || o.contains(expected)) continue;
      // Bound to something else (another interposer, another symbol
      // version): leave it. A lazy slot still points at its own PLT stub.
      if (now != expected && !o.contains(now)) continue;
      if (store(slot, hook, o))
        ++patched;
      else
        raw_line("connleak: cannot make a GOT page of " + o.name + " writable: its calls to " +
                 name + " stay untracked");
    }
  };
  if (jmprel && pltrel == DT_RELA) visit(jmprel, pltrelsz / sizeof(ElfW(Rela)));
  if (rela) visit(rela, relasz / sizeof(ElfW(Rela)));
  return patched;
}

int list_objects(dl_phdr_info* info, size_t, void* data) {
  static_cast<std::vector<std::uintptr_t>*>(data)->push_back(info->dlpi_addr);
  return 0;
}

constinit ForkMutex g_patch_mutex;

}  // namespace

std::vector<std::uintptr_t> loaded_objects() {
  std::vector<std::uintptr_t> bases;
  bases.reserve(64);
  dl_iterate_phdr(&list_objects, &bases);
  std::sort(bases.begin(), bases.end());
  return bases;
}

std::size_t patch_new_objects(const std::vector<std::uintptr_t>& before) {
  ConnleakDlopenFn real_dlopen = connleak_init_real_dlopen();
  ConnleakDlsymFn real_dlsym = connleak_init_real_dlsym();
  DlcloseFn real_close = real_dlclose();
  if (!real_dlopen || !real_dlsym || !real_close) return 0;
  // One patcher at a time: two threads flipping the same RELRO page's
  // protection would fault each other's store. A ForkMutex: a fork waits for
  // the rewrite to finish and the child gets a usable lock.
  std::lock_guard<ForkMutex> lock(g_patch_mutex);
  static const std::uintptr_t self = self_base();
  std::vector<Object> objects;
  Collect c{&before, self, &objects};
  dl_iterate_phdr(&collect, &c);
  const std::vector<Hook>& table = hooks(real_dlopen, real_dlsym);
  std::size_t patched = 0;
  for (const Object& o : objects) {
    // A reference for the time of the rewrite: an object another thread
    // unloads meanwhile is simply not there any more.
    void* handle = real_dlopen(o.name.c_str(), RTLD_LAZY | RTLD_NOLOAD);
    if (!handle) continue;
    link_map* lm = nullptr;
    if (dlinfo(handle, RTLD_DI_LINKMAP, &lm) == 0 && lm && lm->l_addr == o.base)
      patched += patch_object(o, handle, lm, table, real_dlsym);
    real_close(handle);
  }
  // Lookups of names an object lacks left an error behind: the program's
  // dlopen succeeded, so dlerror() must say nothing.
  dlerror();
  return patched;
}

}  // namespace connleak::shim::got
