#include "collector/core/string_table.h"

#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"

namespace connleak {

namespace {
struct Table {
  ForkMutex mutex;
  std::unordered_set<std::string> strings;  // node-based: element addresses are stable
};
Table& table() {
  Table& t = fork_safe_static([] { return new Table; });  // never destroyed: used during exit
  return t;
}
}  // namespace

const char* intern_string(std::string_view text) {
  Table& t = table();
  std::lock_guard<ForkMutex> lock(t.mutex);
  return t.strings.emplace(text).first->c_str();
}

}  // namespace connleak
