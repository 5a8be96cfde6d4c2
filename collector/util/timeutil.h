#pragma once
// Clocks used by records: realtime for the report's wall-clock timestamps,
// monotonic for ages (immune to the host changing the system time).
#include <cstdint>
#include <string>

namespace connleak {

struct Timestamp {
  std::int64_t real_ns = 0;
  std::int64_t mono_ns = 0;
};

Timestamp now();
std::int64_t mono_now_ns();
// "2026-11-21T10:00:00.123Z"
std::string iso8601_utc(std::int64_t real_ns);
// Kernel thread id of the caller (what `top -H` and gdb show).
int current_tid();
// In a fork child, for the forking thread (now the child's only one).
void reset_tid_cache();

}  // namespace connleak
