#include "collector/core/script_frames.h"

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
  bool operator()(const ScriptFrame& a, const ScriptFrame& b) const {
    return a.file == b.file && a.function == b.function && a.line == b.line;
  }
};
struct FrameHash {
  std::size_t operator()(const ScriptFrame& k) const {
    return std::hash<const void*>()(k.file) * 31 ^ std::hash<const void*>()(k.function) * 7 ^
           static_cast<std::size_t>(k.line);
  }
};
struct FrameTable {
  ForkMutex mutex;
  // Node-based: element addresses are stable and handed out as ScriptFrame*.
  std::unordered_set<ScriptFrame, FrameHash, FrameEq> frames;
};
FrameTable& table() {
  FrameTable& t =
      fork_safe_static([] { return new FrameTable; });  // never destroyed: used during exit
  return t;
}
std::atomic<ScriptLanguage> g_script_host{ScriptLanguage::kNone};

}  // namespace

const ScriptFrame* intern_script_frame(std::string_view file, std::string_view function, int line) {
  // Strings are interned first, so frames compare by pointer.
  return intern_script_frame_interned(intern_string(file), intern_string(function), line);
}

const ScriptFrame* intern_script_frame_interned(const char* file, const char* function, int line) {
  ScriptFrame key{file, function, line};
  FrameTable& t = table();
  std::lock_guard<ForkMutex> lock(t.mutex);
  return &*t.frames.insert(key).first;
}

StackDepot& script_depot() {
  StackDepot& depot = fork_safe_static([] { return new StackDepot; });
  return depot;
}

std::vector<Frame> script_frames(StackId id) {
  std::vector<Frame> out;
  for (std::uintptr_t p : script_depot().get(id)) {
    const auto* f = reinterpret_cast<const ScriptFrame*>(p);
    Frame frame;
    frame.function = f->function;
    frame.file = f->file;
    if (f->line > 0) frame.line = f->line;
    out.push_back(std::move(frame));
  }
  return out;
}

void set_script_host(ScriptLanguage language) {
  ScriptLanguage none = ScriptLanguage::kNone;
  if (language != none) g_script_host.compare_exchange_strong(none, language);
}
ScriptLanguage script_host() {
  return g_script_host.load(std::memory_order_relaxed);
}

}  // namespace connleak
