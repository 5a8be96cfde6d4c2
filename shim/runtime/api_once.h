#pragma once
// An interpreter's C API (CPython, Ruby, Perl, PHP), found at run time and
// never linked: the shim must load in any process, and the interpreter's
// symbols are in the global scope only when the program is that interpreter
// (an interpreter embedded through a dlopen(RTLD_LOCAL)ed library is not found).
//
// ApiOnce fills one table of function pointers the first time it is asked,
// under a fork-registered lock, and then answers without a lock: present
// (the table) or absent (null), for the rest of the process.
#include <dlfcn.h>

#include <atomic>
#include <mutex>

#include "collector/core/fork_mutex.h"
#include "shim/runtime/guard.h"

namespace connleak::shim {

// slot = the global scope's `name`; false when it is not there.
template <typename T>
bool load_symbol(T& slot, const char* name) {
  slot = reinterpret_cast<T>(dlsym(RTLD_DEFAULT, name));
  return slot != nullptr;
}

template <typename Table>
class ApiOnce {
 public:
  // Fills every entry the feature needs (load_symbol) and says whether it can
  // run; optional entries it may leave null.
  using Fill = bool (*)(Table&);
  explicit constexpr ApiOnce(Fill fill) : fill_(fill) {}
  ApiOnce(const ApiOnce&) = delete;
  ApiOnce& operator=(const ApiOnce&) = delete;

  const Table* get() {
    State s = state_.load(std::memory_order_acquire);
    if (s != State::kUnknown) return s == State::kPresent ? &table_ : nullptr;
    std::lock_guard<ForkMutex> lock(mutex_);
    if ((s = state_.load(std::memory_order_relaxed)) != State::kUnknown)
      return s == State::kPresent ? &table_ : nullptr;
    Reentry guard;  // dlsym may be interposed (the shim's own hook)
    Table t{};
    const bool ok = fill_(t);
    if (ok) table_ = t;
    state_.store(ok ? State::kPresent : State::kAbsent, std::memory_order_release);
    return ok ? &table_ : nullptr;
  }
  // The table itself, for code that names it once (a reference bound at
  // constant initialization); read only after get() returned it.
  constexpr const Table& table() const { return table_; }

 private:
  enum class State : int { kUnknown, kAbsent, kPresent };
  Fill fill_;
  std::atomic<State> state_{State::kUnknown};
  ForkMutex mutex_;
  Table table_{};
};

}  // namespace connleak::shim
