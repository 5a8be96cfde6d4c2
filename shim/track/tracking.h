#pragma once
// What every client library's hooks share once the handle is known: recording
// a close (before the real close frees the handle) and applying the
// transaction state a command left behind. One place for the messages, so
// libpq and MySQL connections read the same in the logs.
#include <cstdint>

#include "collector/core/live_state.h"
#include "collector/core/registry.h"
#include "shim/track/capture.h"

namespace connleak::shim {

// Records the close of `handle` by function `fn` ("PQfinish", "mysql_close"),
// with its stacks, and prints what the outcome means. The caller must not run
// the real close on kDoubleClose: that would be a double free in the library.
CloseOutcome record_close(Library library, const void* handle, const char* fn,
                          ClosedRecord* info = nullptr);
// The same, when the close began earlier than the call that ends it (a
// socket's Terminate / COM_QUIT): `initiated` are that moment's stacks and
// `by_finalizer` says a finalizer sent it.
CloseOutcome record_close_initiated(Library library, const void* handle, const char* fn,
                                    const CapturedStacks& initiated, bool by_finalizer);

// After a command: the state the library reports now. Lock-free unless a
// transaction begins (its stacks are captured then, or `began` is used when
// the caller took them earlier: a socket learns the state from the server's
// reply, read on the event loop's stack, long after the program sent BEGIN)
// or a flagged one ends.
void note_command_state(Library library, const void* handle, TxnState state,
                        const CapturedStacks* began = nullptr);
// The same when the caller has looked up the handle's LiveConn already.
void note_state_change(LiveConn& live, Library library, const void* handle, TxnState state,
                       const CapturedStacks* began);
inline void note_command_state(LiveConn& live, Library library, const void* handle, TxnState state,
                               const CapturedStacks* began = nullptr) {
  // Nearly every command leaves the state it found: two loads, no call.
  if (live.txn_known.load(std::memory_order_relaxed) &&
      live.txn.load(std::memory_order_relaxed) == static_cast<std::uint8_t>(state))
    return;
  note_state_change(live, library, handle, state, began);
}

// A hook whose real function cannot be found for its caller: one error line
// per function for the whole process (not one per call),
// then the hook returns the function's failure value.
void report_missing(const char* name);

// The hook bodies' tracking allocates; an exception must never unwind into the
// C caller. Losing one record's details is the lesser evil. Every hook family
// wraps its tracking in this.
template <typename Fn>
void no_throw(Fn&& fn) noexcept {
  try {
    fn();
  } catch (...) {
  }
}

// Rate limit for per-event warnings: a loop of bad closes must not flood stderr.
bool warn_budget();

}  // namespace connleak::shim
