#include "collector/report/symbolize.h"

#include <cxxabi.h>
#include <dlfcn.h>
#include <link.h>
#include <unistd.h>

#include <climits>
#include <cstring>
#include <memory>

#include "collector/core/script_frames.h"
#include "collector/report/module_backtrace.h"

namespace connleak {

namespace {

// dladdr names the main program by whatever path it was started with (or "").
// Reports want an absolute path a user can open.
std::string main_program_path() {
  char buf[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", buf, sizeof buf - 1);
  if (n <= 0) return {};
  return std::string(buf, static_cast<size_t>(n));
}

const void* main_program_base() {
  struct Finder {
    static int callback(dl_phdr_info* info, size_t, void* data) {
      *static_cast<uintptr_t*>(data) = info->dlpi_addr;
      return 1;  // the first object is the main program
    }
  };
  uintptr_t base = 0;
  dl_iterate_phdr(&Finder::callback, &base);
  return reinterpret_cast<const void*>(base);
}

std::string demangle(const char* name) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(abi::__cxa_demangle(name, nullptr, nullptr, &status),
                                             std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(name);
}

}  // namespace

Frame Symbolizer::resolve(std::uintptr_t return_address) {
  if (auto it = cache_.find(return_address); it != cache_.end()) return it->second;
  Frame frame;
  frame.address = return_address;
  // A return address points after the call; the call itself is one byte earlier,
  // which puts file:line on the calling statement and keeps inlined frames right.
  std::uintptr_t lookup = return_address > 0 ? return_address - 1 : 0;

  Dl_info info{};
  if (dladdr(reinterpret_cast<void*>(lookup), &info) != 0) {
    static const void* main_base = main_program_base();
    if (info.dli_fbase == main_base || !info.dli_fname || info.dli_fname[0] != '/') {
      // Leaked on purpose: exit reports are symbolized after static destructors ran.
      static const std::string& exe = *new std::string(main_program_path());
      frame.module =
          info.dli_fbase == main_base ? exe : std::string(info.dli_fname ? info.dli_fname : "");
    } else {
      frame.module = info.dli_fname;
    }
    if (info.dli_sname) frame.function = demangle(info.dli_sname);
  }

  // libbacktrace reads the full symbol table and DWARF: it names static and
  // hidden functions that dladdr (dynamic symbols only) cannot. dladdr's name,
  // when there is one, wins (Boost's frame::name() order).
  BacktraceInfo bt = module_backtrace_info(lookup);
  if (!info.dli_sname && !bt.function.empty() && bt.function.rfind("0x", 0) != 0)
    frame.function = demangle(bt.function.c_str());
  if (!bt.file.empty()) {
    frame.file = bt.file;
    if (bt.line > 0) frame.line = static_cast<int>(bt.line);
  }
  cache_.emplace(return_address, frame);
  return frame;
}

std::vector<Frame> Symbolizer::resolve_all(std::span<const std::uintptr_t> addresses) {
  std::vector<Frame> frames;
  frames.reserve(addresses.size());
  for (std::uintptr_t a : addresses) frames.push_back(resolve(a));
  return frames;
}

FrameList Symbolizer::resolve_stack(StackId id) {
  auto [it, inserted] = native_stacks_.try_emplace(id);
  if (inserted) it->second = resolve_all(StackDepot::instance().get(id));
  return it->second;
}

FrameList Symbolizer::script_stack(StackId id) {
  auto [it, inserted] = script_stacks_.try_emplace(id);
  if (inserted) it->second = script_frames(id);
  return it->second;
}

}  // namespace connleak
