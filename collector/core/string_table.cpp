#include "collector/core/string_table.h"

#include <functional>
#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"

namespace connleak {

namespace {
// Looked up by string_view, so a string already there costs no allocation.
struct Hash {
  using is_transparent = void;
  std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
struct Table {
  ForkMutex mutex;
  // Node-based: element addresses are stable.
  std::unordered_set<std::string, Hash, std::equal_to<>> strings;
};
Table& table() {
  Table& t = fork_safe_static([] { return new Table; });  // never destroyed: used during exit
  return t;
}
}  // namespace

const char* intern_string(std::string_view text) {
  Table& t = table();
  std::lock_guard<ForkMutex> lock(t.mutex);
  if (auto it = t.strings.find(text); it != t.strings.end()) return it->c_str();
  return t.strings.emplace(text).first->c_str();
}

}  // namespace connleak
