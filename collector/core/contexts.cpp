#include "collector/core/contexts.h"

#include <mutex>

#include "collector/core/fork_safe_static.h"
#include "collector/core/string_table.h"

namespace connleak {

constinit std::atomic<std::uint32_t> g_current_context{0};

ContextTable& ContextTable::instance() {
  ContextTable& table =
      fork_safe_static([] { return new ContextTable; });  // never destroyed: used during exit
  return table;
}

std::uint32_t ContextTable::intern(std::string_view test, std::string_view fixture,
                                   std::string_view scope) {
  std::string key;
  key.reserve(test.size() + fixture.size() + scope.size() + 2);
  key.append(test).append(1, '\x1f').append(fixture).append(1, '\x1f').append(scope);
  std::lock_guard<ForkMutex> lock(mutex_);
  auto it = ids_.find(key);
  if (it != ids_.end()) return it->second;
  ContextLabel label{intern_string(test), intern_string(fixture), intern_string(scope)};
  labels_.push_back(label);
  auto id = static_cast<std::uint32_t>(labels_.size());
  ids_.emplace(std::move(key), id);
  return id;
}

bool ContextTable::label(std::uint32_t id, ContextLabel* out) {
  std::lock_guard<ForkMutex> lock(mutex_);
  if (id < 1 || id > labels_.size()) return false;
  *out = labels_[id - 1];
  return true;
}

std::size_t ContextTable::size() {
  std::lock_guard<ForkMutex> lock(mutex_);
  return labels_.size();
}

ContextLabel context_label(std::uint32_t id) {
  ContextLabel label;
  if (id) ContextTable::instance().label(id, &label);
  return label;
}

}  // namespace connleak
