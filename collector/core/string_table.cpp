#include "collector/core/string_table.h"

#include <mutex>
#include <new>
#include <string>
#include <unordered_set>

#include "collector/core/fork_mutex.h"

namespace connleak {

namespace {
struct Table {
  ForkMutex mutex;
  std::unordered_set<std::string> strings;  // node-based: element addresses are stable
};
Table& table() {
  static Table& t = *new Table;  // never destroyed: used during exit
  return t;
}
}  // namespace

const char* intern_string(std::string_view text) {
  Table& t = table();
  std::lock_guard<ForkMutex> lock(t.mutex);
  return t.strings.emplace(text).first->c_str();
}

}  // namespace connleak
