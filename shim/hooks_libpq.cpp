// Interposed libpq entry points. Every hook follows one pattern:
//   1. resolve the real function in the caller's scope (real_symbol.h);
//   2. pass straight through when libpq calls itself (PQconnectdb calls the
//      exported PQconnectStart, PQping opens and finishes its own connection),
//      when tracking is off, or while the shim is doing its own work;
//   3. otherwise record, with the registry updated before a close frees the
//      handle and after an open returns it.
#include <dlfcn.h>
#include <libpq-fe.h>

#include <atomic>

#include "collector/logger.h"
#include "collector/redact.h"
#include "collector/registry.h"
#include "collector/string_table.h"
#include "shim/capture.h"
#include "shim/export.h"
#include "shim/guard.h"
#include "shim/libpq_probe.h"
#include "shim/real_symbol.h"
#include "shim/runtime.h"

namespace connleak::shim {

namespace {

#define CONNLEAK_REAL(name, resolution) reinterpret_cast<decltype(&::name)>((resolution).real)

void report_missing(const char* name) {
  log().error("connleak: cannot find the real {} for its caller; the call fails", name);
}

// Rate limit for per-event warnings: a loop of bad closes must not flood stderr.
bool warn_budget() {
  static std::atomic<int> left{20};
  return left.fetch_sub(1, std::memory_order_relaxed) > 0;
}

const char* str_or_empty(const char* s) { return s ? s : ""; }

// The target as libpq resolved it (defaults and environment applied), read
// back through the same libpq copy. Never PQpass: only whitelisted fields.
std::string live_target(PGconn* conn, const void* caller) {
  auto host = CONNLEAK_REAL(PQhost, resolve(kSym_PQhost, caller));
  auto port = CONNLEAK_REAL(PQport, resolve(kSym_PQport, caller));
  auto db = CONNLEAK_REAL(PQdb, resolve(kSym_PQdb, caller));
  auto user = CONNLEAK_REAL(PQuser, resolve(kSym_PQuser, caller));
  if (!host || !port || !db || !user) return {};
  return format_target({{"host", str_or_empty(host(conn))},
                        {"port", str_or_empty(port(conn))},
                        {"dbname", str_or_empty(db(conn))},
                        {"user", str_or_empty(user(conn))}});
}

template <typename FallbackTarget>
void track_open(PGconn* conn, const void* caller, const Resolution& r, FallbackTarget fallback) {
  if (!conn) return;  // out of memory in libpq: no handle, nothing to leak
  Reentry guard;
  ConnRecord rec;
  rec.handle = reinterpret_cast<std::uintptr_t>(conn);
  rec.library = Library::kLibpq;
  rec.thread = current_tid();
  rec.opened = now();
  rec.open_stack = capture_stack(static_cast<int>(options().stack_depth));
  std::string target = live_target(conn, caller);
  if (target.empty()) target = fallback();
  rec.target = intern_string(target);
  rec.client_module = r.module;
  // The backend pid matches pg_stat_activity.pid; known once connected (a
  // non-blocking connect gets it at report time instead).
  auto status = CONNLEAK_REAL(PQstatus, resolve(kSym_PQstatus, caller));
  auto backend_pid = CONNLEAK_REAL(PQbackendPID, resolve(kSym_PQbackendPID, caller));
  if (status && backend_pid && status(conn) == CONNECTION_OK) rec.server_id = backend_pid(conn);
  std::uint64_t id = Registry::instance().on_open(rec);
  if (options().verbosity >= 2)
    log().info("connleak: libpq connection {} opened: handle {} {} (libpq {})", id,
               static_cast<const void*>(conn), target, r.module);
}

// Returns false when the real close must NOT run: a second PQfinish of a handle
// already finished is a double free inside libpq. Valgrind-style, the invalid
// call is reported and suppressed instead of corrupting the host's heap.
bool track_close(PGconn* conn) {
  Reentry guard;
  StackId stack = capture_stack(static_cast<int>(options().stack_depth));
  ClosedRecord again;
  switch (Registry::instance().on_close(reinterpret_cast<std::uintptr_t>(conn), stack, now(), &again)) {
    case CloseOutcome::kClosed:
      if (options().verbosity >= 2)
        log().info("connleak: libpq handle {} closed", static_cast<const void*>(conn));
      return true;
    case CloseOutcome::kUnknown:
      if (warn_budget())
        log().warn("connleak: PQfinish of a handle connleak never saw opened ({}); passed through",
                   static_cast<const void*>(conn));
      return true;
    case CloseOutcome::kDoubleClose:
      if (warn_budget())
        log().warn("connleak: double PQfinish of handle {} (connection id {}); the second call was "
                   "not forwarded to libpq. Stacks are in the exit report.",
                   static_cast<const void*>(conn), again.record.id);
      return false;
  }
  return true;
}

void track_reset(PGconn* conn) {
  if (!conn) return;
  Reentry guard;
  if (!Registry::instance().on_reset(reinterpret_cast<std::uintptr_t>(conn)) && options().verbosity >= 2)
    log().info("connleak: reset of a handle connleak never saw opened ({})", static_cast<const void*>(conn));
}

}  // namespace

HandleState libpq_state(const ConnRecord& record) {
  HandleState out;
  if (!record.client_module || !record.client_module[0]) return out;
  void* lib = dlopen(record.client_module, RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) return out;  // that libpq copy was unloaded: the handle is gone with it
  auto* conn = reinterpret_cast<PGconn*>(record.handle);
  if (auto status = reinterpret_cast<decltype(&::PQstatus)>(dlsym(lib, "PQstatus"))) {
    switch (status(conn)) {
      case CONNECTION_OK: out.state = "connected"; break;
      case CONNECTION_BAD: out.state = "failed"; break;
      default: out.state = "connecting"; break;
    }
  }
  if (out.state == "connected") {
    if (auto pid = reinterpret_cast<decltype(&::PQbackendPID)>(dlsym(lib, "PQbackendPID")))
      out.server_id = pid(conn);
  }
  close_dl_handle(lib);
  return out;
}

}  // namespace connleak::shim

using namespace connleak;
using namespace connleak::shim;

#define CONNLEAK_HOOK_PROLOGUE(name, fail)                         \
  const void* caller = __builtin_return_address(0);                \
  Resolution r = resolve(kSym_##name, caller);                     \
  auto real = CONNLEAK_REAL(name, r);                              \
  if (!real) {                                                     \
    report_missing(#name);                                         \
    return fail;                                                   \
  }

CONNLEAK_EXPORT PGconn* PQconnectdb(const char* conninfo) {
  CONNLEAK_HOOK_PROLOGUE(PQconnectdb, nullptr)
  if (r.self_call || !should_track()) return real(conninfo);
  PGconn* conn = real(conninfo);
  track_open(conn, caller, r, [&] { return redact_conninfo(str_or_empty(conninfo)); });
  return conn;
}

CONNLEAK_EXPORT PGconn* PQconnectStart(const char* conninfo) {
  CONNLEAK_HOOK_PROLOGUE(PQconnectStart, nullptr)
  if (r.self_call || !should_track()) return real(conninfo);
  PGconn* conn = real(conninfo);
  track_open(conn, caller, r, [&] { return redact_conninfo(str_or_empty(conninfo)); });
  return conn;
}

CONNLEAK_EXPORT PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values,
                                          int expand_dbname) {
  CONNLEAK_HOOK_PROLOGUE(PQconnectdbParams, nullptr)
  if (r.self_call || !should_track()) return real(keywords, values, expand_dbname);
  PGconn* conn = real(keywords, values, expand_dbname);
  track_open(conn, caller, r, [&] { return redact_params(keywords, values, expand_dbname != 0); });
  return conn;
}

CONNLEAK_EXPORT PGconn* PQconnectStartParams(const char* const* keywords, const char* const* values,
                                             int expand_dbname) {
  CONNLEAK_HOOK_PROLOGUE(PQconnectStartParams, nullptr)
  if (r.self_call || !should_track()) return real(keywords, values, expand_dbname);
  PGconn* conn = real(keywords, values, expand_dbname);
  track_open(conn, caller, r, [&] { return redact_params(keywords, values, expand_dbname != 0); });
  return conn;
}

CONNLEAK_EXPORT PGconn* PQsetdbLogin(const char* pghost, const char* pgport, const char* pgoptions,
                                     const char* pgtty, const char* dbName, const char* login,
                                     const char* pwd) {
  CONNLEAK_HOOK_PROLOGUE(PQsetdbLogin, nullptr)
  if (r.self_call || !should_track()) return real(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
  PGconn* conn = real(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
  // `pwd` is never looked at; dbName may itself be a conninfo string.
  track_open(conn, caller, r, [&] {
    return format_target({{"host", str_or_empty(pghost)},
                          {"port", str_or_empty(pgport)},
                          {"dbname", scrub_value(str_or_empty(dbName))},
                          {"user", str_or_empty(login)}});
  });
  return conn;
}

CONNLEAK_EXPORT void PQfinish(PGconn* conn) {
  CONNLEAK_HOOK_PROLOGUE(PQfinish, )
  // PQfinish(NULL) is a documented no-op: pass it on untouched.
  if (r.self_call || !conn || !should_track()) return real(conn);
  if (!track_close(conn)) return;
  real(conn);
}

CONNLEAK_EXPORT void PQreset(PGconn* conn) {
  CONNLEAK_HOOK_PROLOGUE(PQreset, )
  if (!r.self_call && should_track()) track_reset(conn);
  real(conn);
}

CONNLEAK_EXPORT int PQresetStart(PGconn* conn) {
  CONNLEAK_HOOK_PROLOGUE(PQresetStart, 0)
  if (!r.self_call && should_track()) track_reset(conn);
  return real(conn);
}
