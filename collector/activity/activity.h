#pragma once
// What a connection last did: statement count, a bounded raw copy of the last
// statement, when it was sent and when its result was read. Hooks write it on
// the query hot path without a lock or an allocation; report writers read it
// from another thread and normalize it then (never the raw text: only
// normalize_sql's output leaves the process).
//
// Torn reads: the raw copy is guarded by a sequence counter (a seqlock). The
// writer makes the counter odd, writes, makes it even again; a reader that saw
// the counter change retries. The copy is made of relaxed atomic words so the
// race the seqlock tolerates is not undefined behaviour. Two threads writing
// the same connection at once (a program misusing a handle): the second skips
// its copy instead of waiting (the count and times are still updated).
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <string>

#include "collector/activity/normalize.h"

namespace connleak::activity {

inline constexpr std::size_t kRawBytes = 384;

struct Activity {
  std::atomic<std::uint32_t> seq{0};  // odd while the statement fields are written
  std::atomic<std::uint64_t> statements{0};
  std::atomic<std::int64_t> last_sent_mono{0};  // 0: nothing sent yet
  std::atomic<std::int64_t> last_done_mono{0};  // the last result was read
  std::atomic<bool> in_flight{false};           // sent, result not read yet
  // The cycle counter when last_sent_mono was read: a result read less than
  // ~1 ms later takes the send's coarse time instead of reading the clock
  // again (see note_result_done).
  std::atomic<std::uint64_t> last_sent_tsc{0};
  // Under `seq`:
  std::atomic<std::uint32_t> len{0};  // raw bytes; kCut bit: the statement was longer
  std::atomic<std::uint8_t> dialect{0};
  std::atomic<const char*> prepared{nullptr};  // already normalized text (a prepared statement's)
  // Not under `seq`: a statement prepared over a socket whose id the server's
  // answer will give (MySQL), normalized and interned; null when none.
  std::atomic<const char*> pending_prepare{nullptr};
  std::atomic<std::uint64_t> raw[kRawBytes / 8] = {};
  // Free-list link of the pool that hands blocks out (live_state.cpp),
  // guarded by its mutex; hooks never write it.
  Activity* pool_next = nullptr;

  static constexpr std::uint32_t kCut = 1u << 31;
  void reset();
};

// Coarse monotonic clock (CLOCK_MONOTONIC_COARSE: same clock as
// mono_now_ns(), a few ms resolution, a few ns per read): idle times are
// reported in tenths of seconds.
std::int64_t coarse_mono_ns();

// Hot path. `n` = npos: `sql` is NUL-terminated (only the first kRawBytes + 1
// bytes are looked at).
void note_statement(Activity& a, const char* sql, std::size_t n, Dialect dialect, bool cut = false);
// A statement whose normalized text is known already (an execution of a
// prepared statement: the text was normalized once, when it was prepared).
// `normalized` must stay valid forever (interned or static).
void note_prepared(Activity& a, const char* normalized);
// Counts a statement whose text is unknown (keeps the last text).
void note_untexted(Activity& a);
// The connection's result state after a call: `busy` = a statement is still
// running (libpq PQTRANS_ACTIVE, a MySQL result not read). Inline: after
// every command, and nearly always nothing changes.
void note_result_done(Activity& a);
inline void note_result(Activity& a, bool busy) {
  const bool in_flight = a.in_flight.load(std::memory_order_relaxed);
  if (busy) {
    if (!in_flight) a.in_flight.store(true, std::memory_order_relaxed);
    return;
  }
  if (in_flight) note_result_done(a);  // nothing was pending: no clock read
}

struct ActivityView {
  std::uint64_t statements = 0;
  std::string last_statement;       // normalized; empty when no text is known
  std::int64_t last_used_mono = 0;  // 0: never used
  bool in_flight = false;
};
// Report side: a consistent copy, normalized. False if nothing was recorded.
bool read_activity(const Activity& a, ActivityView& out);

// "last: SELECT ... (37 statements, idle 41.2 s)"; "" when nothing was recorded.
std::string describe_activity(std::uint64_t statements, const std::string& last_statement,
                              double idle_seconds, bool busy);

}  // namespace connleak::activity
