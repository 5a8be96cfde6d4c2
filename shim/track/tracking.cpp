#include "shim/track/tracking.h"

#include <algorithm>
#include <atomic>
#include <string>

#include "collector/util/logger.h"
#include "shim/python/python_stack.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/runtime/runtime_teardown.h"
#include "shim/track/capture.h"
#include "shim/track/live_cache.h"

namespace connleak::shim {

namespace {
int depth() {
  return static_cast<int>(options().stack_depth);
}
// Where a connection was closed matters for double closes and follow-ups; a
// few frames name the caller, and the unwind is the bulk of a close's cost.
int close_depth() {
  return std::min(depth(), 8);
}

// How messages name a handle: its address, or for a socket-level record the
// descriptor (its registry key is a synthetic number that means nothing to users).
std::string label(const ConnRecord& record, const void* handle) {
  if (const SocketPart* socket = record.socket()) return "fd " + std::to_string(socket->fd);
  return fmt::format("{}", handle);
}
// The same for a handle still open: its record says.
std::string label(Library library, const void* handle) {
  std::string out;
  if (library == Library::kSocket)
    Registry::instance().inspect(reinterpret_cast<std::uintptr_t>(handle),
                                 [&](const ConnRecord& record) { out = label(record, handle); });
  return out.empty() ? fmt::format("{}", handle) : out;
}
}  // namespace

// Once per function: a program that retries would otherwise flood stderr.
// Names are string literals, so their addresses identify them.
void report_missing(const char* name) {
  static std::atomic<const char*> reported[64] = {};
  for (auto& slot : reported) {
    const char* seen = slot.load(std::memory_order_acquire);
    if (seen == name) return;
    if (!seen) {
      if (slot.compare_exchange_strong(seen, name, std::memory_order_acq_rel)) break;
      if (seen == name) return;
    }
  }
  log().error("connleak: cannot find the real {} for its caller; the call fails", name);
}

bool warn_budget() {
  static std::atomic<int> left{20};
  return left.fetch_sub(1, std::memory_order_relaxed) > 0;
}

namespace {
CloseOutcome apply_close(Library library, const void* handle, const char* fn,
                         const CloseEvent& event, ClosedRecord* info_out);
}  // namespace

CloseOutcome record_close(Library library, const void* handle, const char* fn,
                          ClosedRecord* info_out) {
  Reentry guard;
  CloseEvent event;
  event.when = now();
  // A close during CPython's shutdown is the interpreter tearing down module
  // globals (the driver's dealloc): the program itself never closed it.
  event.by_interpreter = python_finalizing();
  event.by_runtime = !event.by_interpreter && runtime_tearing_down();
  CapturedStacks stacks = event.by_interpreter ? CapturedStacks{capture_stack(close_depth()), 0}
                                               : capture_stacks(close_depth());
  event.stack = stacks.native;
  event.py_stack = stacks.script;
  return apply_close(library, handle, fn, event, info_out);
}

CloseOutcome record_close_initiated(Library library, const void* handle, const char* fn,
                                    const CapturedStacks& initiated, bool by_finalizer) {
  Reentry guard;
  CloseEvent event;
  event.when = now();
  event.by_interpreter = python_finalizing();
  event.by_runtime = !event.by_interpreter && runtime_tearing_down();
  event.by_finalizer = by_finalizer && !event.by_interpreter && !event.by_runtime;
  event.stack = initiated.native;
  event.py_stack = initiated.script;
  return apply_close(library, handle, fn, event, nullptr);
}

namespace {
CloseOutcome apply_close(Library library, const void* handle, const char* fn,
                         const CloseEvent& event, ClosedRecord* info_out) {
  ClosedRecord info;
  const char* lib = library_name(library);
  CloseOutcome outcome =
      Registry::instance().on_close(reinterpret_cast<std::uintptr_t>(handle), event, &info);
  switch (outcome) {
    case CloseOutcome::kClosed:
      if (info.record.alerts && !event.by_interpreter && !event.by_finalizer && !event.by_runtime) {
        // HikariCP's "previously reported leaked connection was returned": lets
        // users tune their thresholds.
        log().warn("connleak: previously flagged connection id {} ({} {}) was closed after {:.1f}s",
                   info.record.id, lib, label(info.record, handle),
                   static_cast<double>(event.when.mono_ns - info.record.opened.mono_ns) / 1e9);
      }
      if (options().verbosity >= 2)
        log().info("connleak: {} handle {} closed{}", lib, label(info.record, handle),
                   event.by_interpreter ? " by the interpreter at exit"
                   : event.by_runtime   ? " by the runtime while it shut down"
                   : event.by_finalizer ? " by a finalizer (dropped by the program)"
                                        : "");
      break;
    case CloseOutcome::kUnknown:
      if (warn_budget())
        log().warn("connleak: {} of a handle connleak never saw opened ({}); passed through", fn,
                   handle);
      break;
    case CloseOutcome::kDoubleClose:
      if (warn_budget())
        log().warn(
            "connleak: double {} of handle {} (connection id {}); the second call was not "
            "forwarded to {}. Stacks are in the exit report.",
            fn, handle, info.record.id,
            library == Library::kLibpq ? "libpq" : "the client library");
      break;
  }
  if (info_out) *info_out = info;
  return outcome;
}
}  // namespace

void note_command_state(Library library, const void* handle, TxnState state,
                        const CapturedStacks* began) {
  LiveConn* live = live_conn_for(reinterpret_cast<std::uintptr_t>(handle));
  if (!live) return;  // a handle we never saw opened
  note_command_state(*live, library, handle, state, began);
}

void note_state_change(LiveConn& live_ref, Library library, const void* handle, TxnState state,
                       const CapturedStacks* began) {
  LiveConn* live = &live_ref;
  StackId py_stack = 0;
  TxnChange change = note_txn_state(*live, state, [&] {
    if (began && (began->native || began->script)) {
      py_stack = began->script;
      return began->native;
    }
    Reentry guard;
    CapturedStacks stacks = capture_stacks(depth());
    py_stack = stacks.script;
    return stacks.native;
  });
  if (change.began) live->txn_py_stack.store(py_stack, std::memory_order_relaxed);
  if (change.ended_flagged)
    log().warn("connleak: the transaction flagged on connection id {} ({} {}) ended after {:.1f}s",
               live->record_id.load(std::memory_order_relaxed), library_name(library),
               label(library, handle), change.lasted_seconds);
}

}  // namespace connleak::shim
