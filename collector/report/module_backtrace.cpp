#include "collector/report/module_backtrace.h"

#include <backtrace.h>
#include <dlfcn.h>
#include <link.h>

#include <map>
#include <utility>

#include "collector/core/fork_mutex.h"

namespace connleak {

namespace {

// A loaded module as dl_iterate_phdr names it: its load bias and its path
// ("" for the main program, always the first entry).
using ModuleKey = std::pair<std::uintptr_t, std::string>;

bool contains(const dl_phdr_info* info, std::uintptr_t pc) {
  for (int i = 0; i < info->dlpi_phnum; ++i) {
    const ElfW(Phdr)& ph = info->dlpi_phdr[i];
    if (ph.p_type != PT_LOAD) continue;
    std::uintptr_t start = info->dlpi_addr + ph.p_vaddr;
    if (pc >= start && pc < start + ph.p_memsz) return true;
  }
  return false;
}

// How both walks below name a module: "" for the main program (the first
// entry; libbacktrace opens it through /proc/self/exe), else its path.
const char* module_name(const dl_phdr_info* info, bool first) {
  return first || !info->dlpi_name ? "" : info->dlpi_name;
}

bool module_of(std::uintptr_t pc, ModuleKey* key) {
  struct Find {
    std::uintptr_t pc;
    ModuleKey* key;
    bool first = true;
    bool found = false;
  } find{pc, key};
  dl_iterate_phdr(
      [](dl_phdr_info* info, size_t, void* data) {
        auto& f = *static_cast<Find*>(data);
        bool first = f.first;
        f.first = false;
        if (!contains(info, f.pc)) return 0;
        *f.key = {info->dlpi_addr, module_name(info, first)};
        f.found = true;
        return 1;
      },
      &find);
  return find.found;
}

// Every libbacktrace call happens under this lock: the states are made with
// threaded=0, and the module filter below is one global.
ForkMutex g_lock;
const ModuleKey* g_only = nullptr;  // the module the state being made may see

}  // namespace

}  // namespace connleak

// libbacktrace's own calls to dl_iterate_phdr are renamed to this one when the
// build copies libbacktrace.a (objcopy --redefine-sym, cmake/Dependencies.cmake):
// it walks the real list but shows libbacktrace only the module being added.
extern "C" int connleak_backtrace_dl_iterate_phdr(int (*callback)(dl_phdr_info*, size_t, void*),
                                                  void* data) {
  struct Filter {
    int (*callback)(dl_phdr_info*, size_t, void*);
    void* data;
    bool first = true;
  } filter{callback, data};
  return dl_iterate_phdr(
      [](dl_phdr_info* info, size_t size, void* raw) {
        auto& f = *static_cast<Filter*>(raw);
        bool first = f.first;
        f.first = false;
        const connleak::ModuleKey* only = connleak::g_only;
        if (only) {
          if (info->dlpi_addr != only->first || only->second != connleak::module_name(info, first))
            return 0;
        }
        return f.callback(info, size, f.data);
      },
      &filter);
}

namespace connleak {

namespace {

// The callbacks Boost.Stacktrace's libbacktrace backend uses, with the same
// rules: every inlined level is visited and the last non-null name and file
// win; the line is the last one reported.
struct PcData {
  std::string function;
  std::string file;
  std::size_t line = 0;
};

int full_callback(void* data, std::uintptr_t, const char* file, int line, const char* function) {
  auto& d = *static_cast<PcData*>(data);
  if (file) d.file = file;
  if (function) d.function = function;
  d.line = static_cast<std::size_t>(line);
  return 0;
}

void syminfo_callback(void* data, std::uintptr_t, const char* symname, std::uintptr_t,
                      std::uintptr_t) {
  if (symname) static_cast<PcData*>(data)->function = symname;
}

void error_callback(void*, const char*, int) {}

// Made once per module and kept for the life of the process (libbacktrace has
// no way to free a state); leaked on purpose so exit reports written after
// static destructors still find them.
std::map<ModuleKey, backtrace_state*>& states() {
  static auto& made = *new std::map<ModuleKey, backtrace_state*>;
  return made;
}

backtrace_state* state_for(const ModuleKey& key, std::uintptr_t pc) {
  auto& states = connleak::states();
  if (auto it = states.find(key); it != states.end()) return it->second;
  // The main program is found the way Boost found it (/proc/self/exe); a library
  // by its own path, so that a state for the C library never opens the program.
  backtrace_state* state = backtrace_create_state(key.second.empty() ? nullptr : key.second.c_str(),
                                                  0, error_callback, nullptr);
  if (state) {
    // libbacktrace reads the module at its first lookup: make that happen now,
    // while the walk of loaded modules shows only this one.
    g_only = &key;
    PcData ignored;
    backtrace_syminfo(state, pc, syminfo_callback, error_callback, &ignored);
    g_only = nullptr;
  }
  states.emplace(key, state);
  return state;
}

}  // namespace

BacktraceInfo module_backtrace_info(std::uintptr_t pc) {
  BacktraceInfo out;
  PcData d;
  ModuleKey key;
  if (module_of(pc, &key)) {
    g_lock.lock();
    if (backtrace_state* state = state_for(key, pc)) {
      backtrace_pcinfo(state, pc, full_callback, error_callback, &d) ||
          backtrace_syminfo(state, pc, syminfo_callback, error_callback, &d);
    }
    g_lock.unlock();
  }
  out.function = std::move(d.function);
  out.file = std::move(d.file);
  out.line = d.line;
  return out;
}

std::size_t module_backtrace_modules_read() {
  g_lock.lock();
  std::size_t n = states().size();
  g_lock.unlock();
  return n;
}

}  // namespace connleak
