#pragma once
// Test attribution (extension, issue 17): a context names what the program is
// running now (a pytest test, or a fixture being set up). Every connection
// and checkout opened while a context is current carries its id, so a test
// runner can ask after each test "what did this test open and leave open?".
//
// One current context per process, not per thread: a test runner runs one
// test at a time per process (pytest, each xdist worker), and what a test
// starts on helper threads (run_in_executor, a thread pool, a driver's own
// threads) is that test's too; asyncio tests run on one thread anyway. The
// cost: a background thread that outlives a test (a pool's reaper) has its
// connections attributed to the test running at the time.
//
// The hot path reads one relaxed atomic: labels are interned once per
// context by the runner, never per connection.
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "collector/core/fork_mutex.h"

namespace connleak {

struct ContextLabel {
  const char* test = "";     // interned, redacted: the pytest node id
  const char* fixture = "";  // interned: the fixture's name; "" for the test itself
  const char* scope = "";    // interned: "function", "module", ...; "" for the test itself
};

class ContextTable {
 public:
  static ContextTable& instance();
  ContextTable() = default;
  ~ContextTable() { mutex_.forget(); }  // test instances only

  // The id of (test, fixture, scope), the same id for the same triple; > 0.
  std::uint32_t intern(std::string_view test, std::string_view fixture, std::string_view scope);
  // False for an unknown id.
  bool label(std::uint32_t id, ContextLabel* out);
  std::size_t size();

 private:
  ForkMutex mutex_;
  std::vector<ContextLabel> labels_;                    // index = id - 1
  std::unordered_map<std::string, std::uint32_t> ids_;  // "test\x1ffixture\x1fscope" -> id
};

// The process's current context (0: none). A constant-initialised global,
// not a member of the table: hooks may open connections before any
// constructor ran.
extern std::atomic<std::uint32_t> g_current_context;
inline std::uint32_t current_context() {
  return g_current_context.load(std::memory_order_relaxed);
}
// Returns the previous one.
inline std::uint32_t set_current_context(std::uint32_t id) {
  return g_current_context.exchange(id, std::memory_order_relaxed);
}

// The label of `id` from the process-wide table (empty strings if unknown).
ContextLabel context_label(std::uint32_t id);

}  // namespace connleak
