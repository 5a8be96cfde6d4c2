#pragma once
// What every client library's hooks share once the handle is known: recording
// a close (before the real close frees the handle) and applying the
// transaction state a command left behind. One place for the messages, so
// libpq and MySQL connections read the same in the logs.
#include <cstdint>

#include "collector/live_state.h"
#include "collector/registry.h"

namespace connleak::shim {

// Records the close of `handle` by function `fn` ("PQfinish", "mysql_close"),
// with its stacks, and prints what the outcome means. The caller must not run
// the real close on kDoubleClose: that would be a double free in the library.
CloseOutcome record_close(Library library, const void* handle, const char* fn, ClosedRecord* info = nullptr);

// After a command: the state the library reports now. Lock-free unless a
// transaction begins (its stacks are captured then) or a flagged one ends.
void note_command_state(Library library, const void* handle, TxnState state);

// A hook whose real function cannot be found for its caller: one error line,
// then the hook returns the function's failure value.
void report_missing(const char* name);

// Rate limit for per-event warnings: a loop of bad closes must not flood stderr.
bool warn_budget();

}  // namespace connleak::shim
