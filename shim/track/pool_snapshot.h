#pragma once
// What the shim does with pool checkouts beyond recording them (extension):
// follow-up lines when a flagged or reclaimed checkout ends, the
// checkout_threshold watchdog (worker thread), and the snapshots written
// when a pool runs dry (pool_exhausted) or the server refuses a connection
// (server_refused).
#include <cstdint>
#include <string>

#include "collector/core/checkouts.h"

namespace connleak::shim {

// A checkout that carried a checkout_held alert came back ("returned after N
// s"), or the garbage collector reclaimed one (a leak, said at once).
void report_checkout_end(const CheckoutRecord& ended);

// What the holder of open checkout `c` is doing now, read under the GIL from
// any thread: its thread's current Python stack, or for an asyncio task the
// task's suspended coroutine stack (its thread's while it runs). 0: unknown.
StackId checkout_holder_stack(const CheckoutRecord& c);

// One collector-thread round of checkout_threshold (a no-op when it is off).
void checkout_watchdog_round();

// connleak_pool_exhausted: 0 written, 1 rate-limited.
int write_pool_snapshot(std::uint64_t pool_id, double waited_seconds);

// The server refused a connection (PostgreSQL 53300, MySQL 1040/1203):
// `what` is e.g. "PostgreSQL SQLSTATE 53300: sorry, too many clients already".
// Rate-limited like pool snapshots; false when rate-limited or off.
bool write_refusal_snapshot(const std::string& what);

}  // namespace connleak::shim
