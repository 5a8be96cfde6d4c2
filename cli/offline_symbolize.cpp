#include "cli/offline_symbolize.h"

#include <cxxabi.h>
#include <elfutils/libdwfl.h>

#include <cstdlib>
#include <map>

#include "collector/journal/build_id.h"

namespace connleak::cli {

namespace {

std::string demangle(const char* name) {
  int status = 0;
  char* out = abi::__cxa_demangle(name, nullptr, nullptr, &status);
  std::string s = status == 0 && out ? out : name;
  std::free(out);
  return s;
}

const journal::JournalModule* module_of(const std::vector<journal::JournalModule>& modules,
                                        std::uint64_t address) {
  for (const auto& m : modules)
    if (address >= m.low && address < m.high) return &m;
  return nullptr;
}

}  // namespace

struct OfflineSymbolizer::Impl {
  Dwfl* dwfl = nullptr;
  std::vector<journal::JournalModule> modules;
  std::map<std::string, bool> usable;  // by path: build id matches
  std::map<std::uint64_t, Frame> cache;
};

OfflineSymbolizer::OfflineSymbolizer(const std::vector<journal::JournalModule>& modules)
    : impl_(std::make_unique<Impl>()) {
  static const Dwfl_Callbacks callbacks = {
      .find_elf = dwfl_build_id_find_elf,
      .find_debuginfo = dwfl_standard_find_debuginfo,
      .section_address = dwfl_offline_section_address,
      .debuginfo_path = nullptr,
  };
  impl_->modules = modules;
  impl_->dwfl = dwfl_begin(&callbacks);
  if (impl_->dwfl) dwfl_report_begin(impl_->dwfl);
  for (const auto& m : modules) {
    if (m.path.empty() || m.path[0] != '/') continue;  // the vDSO, or a name without a file
    std::vector<unsigned char> now = journal::build_id_of_file(m.path);
    bool same = !m.build_id.empty() && now == m.build_id;
    impl_->usable[m.path] = same;
    if (!same) {
      if (now.empty() && m.build_id.empty())
        notes_.push_back(
            m.path + " has no build id to check it against: its frames are left as raw addresses");
      else if (now.empty())
        notes_.push_back(m.path + " is gone or unreadable: its frames are left as raw addresses");
      else
        notes_.push_back(m.path + " changed since the process ran (build id " +
                         journal::hex_bytes(m.build_id) + ", now " + journal::hex_bytes(now) +
                         "): its frames are left as raw addresses");
      continue;
    }
    // add_p_vaddr: the file's addresses plus the recorded load bias (dlpi_addr).
    if (impl_->dwfl)
      dwfl_report_elf(impl_->dwfl, m.path.c_str(), m.path.c_str(), -1, m.load_address, true);
  }
  if (impl_->dwfl) dwfl_report_end(impl_->dwfl, nullptr, nullptr);
}

OfflineSymbolizer::~OfflineSymbolizer() {
  if (impl_->dwfl) dwfl_end(impl_->dwfl);
}

Frame OfflineSymbolizer::resolve(std::uint64_t return_address) {
  if (auto it = impl_->cache.find(return_address); it != impl_->cache.end()) return it->second;
  Frame frame;
  frame.address = return_address;
  const journal::JournalModule* m = module_of(impl_->modules, return_address);
  if (m) frame.module = m->path;
  auto usable = m ? impl_->usable.find(m->path) : impl_->usable.end();
  if (impl_->dwfl && usable != impl_->usable.end() && usable->second) {
    // The call is one byte before its return address (as the in-process symbolizer does).
    Dwarf_Addr pc = return_address > 0 ? return_address - 1 : 0;
    if (Dwfl_Module* mod = dwfl_addrmodule(impl_->dwfl, pc)) {
      if (const char* name = dwfl_module_addrname(mod, pc)) {
        // The symbol table's "__libc_start_main@@GLIBC_2.34": the version is not the function's
        // name.
        std::string plain(name);
        if (std::size_t at = plain.find('@'); at != std::string::npos && at > 0) plain.resize(at);
        frame.function = demangle(plain.c_str());
      }
      if (Dwfl_Line* line = dwfl_module_getsrc(mod, pc)) {
        int lineno = 0;
        if (const char* file = dwfl_lineinfo(line, nullptr, &lineno, nullptr, nullptr, nullptr)) {
          frame.file = file;
          if (lineno > 0) frame.line = lineno;
        }
      }
    }
  }
  impl_->cache.emplace(return_address, frame);
  return frame;
}

}  // namespace connleak::cli
