#include "collector/core/python_frames.h"

#include <atomic>
#include <functional>
#include <mutex>
#include <string>
#include <unordered_set>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/string_table.h"

namespace connleak {

namespace {

struct FrameEq {
  bool operator()(const PyFrameInfo& a, const PyFrameInfo& b) const {
    return a.file == b.file && a.function == b.function && a.line == b.line;
  }
};
struct FrameHash {
  std::size_t operator()(const PyFrameInfo& k) const {
    return std::hash<const void*>()(k.file) * 31 ^ std::hash<const void*>()(k.function) * 7 ^
           static_cast<std::size_t>(k.line);
  }
};
struct FrameTable {
  ForkMutex mutex;
  // Node-based: element addresses are stable and handed out as PyFrameInfo*.
  std::unordered_set<PyFrameInfo, FrameHash, FrameEq> frames;
};
FrameTable& table() {
  FrameTable& t =
      fork_safe_static([] { return new FrameTable; });  // never destroyed: used during exit
  return t;
}
std::atomic<bool> g_python_host{false};

}  // namespace

const PyFrameInfo* intern_py_frame(std::string_view file, std::string_view function, int line) {
  // Strings are interned first, so frames compare by pointer.
  return intern_py_frame_interned(intern_string(file), intern_string(function), line);
}

const PyFrameInfo* intern_py_frame_interned(const char* file, const char* function, int line) {
  PyFrameInfo key{file, function, line};
  FrameTable& t = table();
  std::lock_guard<ForkMutex> lock(t.mutex);
  return &*t.frames.insert(key).first;
}

StackDepot& python_depot() {
  StackDepot& depot = fork_safe_static([] { return new StackDepot; });
  return depot;
}

std::vector<Frame> python_frames(StackId id) {
  std::vector<Frame> out;
  for (std::uintptr_t p : python_depot().get(id)) {
    const auto* f = reinterpret_cast<const PyFrameInfo*>(p);
    Frame frame;
    frame.function = f->function;
    frame.file = f->file;
    if (f->line > 0) frame.line = f->line;
    out.push_back(std::move(frame));
  }
  return out;
}

void set_python_host(bool yes) {
  g_python_host.store(yes, std::memory_order_relaxed);
}
bool python_host() {
  return g_python_host.load(std::memory_order_relaxed);
}

}  // namespace connleak
