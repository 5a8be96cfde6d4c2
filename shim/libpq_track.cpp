// What the libpq hooks record. Every body follows one pattern:
//   1. pass straight through when libpq calls itself (PQconnectdb calls the
//      exported PQconnectStart, PQping opens and finishes its own connection),
//      when tracking is off, or while the shim is doing its own work;
//   2. otherwise record, with the registry updated before a close frees the
//      handle and after an open returns it.
#include <dlfcn.h>

#include <atomic>

#include "collector/logger.h"
#include "collector/redact.h"
#include "collector/registry.h"
#include "collector/string_table.h"
#include "shim/capture.h"
#include "shim/collector_thread.h"
#include "shim/guard.h"
#include "shim/libpq_impl.h"
#include "shim/libpq_probe.h"
#include "shim/live_cache.h"
#include "shim/pool_snapshot.h"
#include "shim/python_stack.h"
#include "shim/runtime.h"
#include "shim/tracking.h"

namespace connleak::shim {

namespace {

// A function of the same libpq copy as the hooked one (PQstatus, PQhost, ...).
#define CONNLEAK_IN(name, resolution) \
  reinterpret_cast<decltype(&::name)>(resolve_in((resolution).module, kSym_##name))
#define CONNLEAK_REAL(name) reinterpret_cast<decltype(&::name)>(r.real)

bool tracking(const Resolution& r) { return !r.self_call && should_track(); }

const char* str_or_empty(const char* s) { return s ? s : ""; }

int depth() { return static_cast<int>(options().stack_depth); }

// The target as libpq resolved it (defaults and environment applied), read
// back through the same libpq copy. Never PQpass: only whitelisted fields.
std::string live_target(PGconn* conn, const Resolution& r) {
  auto host = CONNLEAK_IN(PQhost, r);
  auto port = CONNLEAK_IN(PQport, r);
  auto db = CONNLEAK_IN(PQdb, r);
  auto user = CONNLEAK_IN(PQuser, r);
  if (!host || !port || !db || !user) return {};
  return format_target({{"host", str_or_empty(host(conn))},
                        {"port", str_or_empty(port(conn))},
                        {"dbname", str_or_empty(db(conn))},
                        {"user", str_or_empty(user(conn))}});
}

// A connect the server refused for want of slots (SQLSTATE 53300): one
// snapshot of every open connection, the likely culprits. libpq keeps no
// SQLSTATE for a failed connect, so the server's fixed texts are matched (the
// C-locale ones; the server sends them before any lc_messages applies).
void note_refusal(PGconn* conn, const Resolution& r) {
  auto message = CONNLEAK_IN(PQerrorMessage, r);
  const char* text = message ? message(conn) : nullptr;
  if (!text) return;
  std::string_view m(text);
  if (m.find("too many clients already") != std::string_view::npos)
    write_refusal_snapshot("PostgreSQL SQLSTATE 53300: sorry, too many clients already");
  else if (m.find("remaining connection slots are reserved") != std::string_view::npos)
    write_refusal_snapshot("PostgreSQL SQLSTATE 53300: remaining connection slots are reserved");
}

template <typename FallbackTarget>
void track_open(PGconn* conn, const Resolution& r, FallbackTarget fallback) {
  if (!conn) return;  // out of memory in libpq: no handle, nothing to leak
  Reentry guard;
  ConnRecord rec;
  rec.handle = reinterpret_cast<std::uintptr_t>(conn);
  rec.library = Library::kLibpq;
  rec.thread = current_tid();
  rec.opened = now();
  CapturedStacks stacks = capture_stacks(depth());
  rec.open_stack = stacks.native;
  rec.py_open_stack = stacks.python;
  std::string target = live_target(conn, r);
  if (target.empty()) target = fallback();
  rec.target = intern_string(target);
  rec.client_module = r.module;
  // The backend pid matches pg_stat_activity.pid; known once connected (a
  // non-blocking connect gets it at report time instead).
  auto status = CONNLEAK_IN(PQstatus, r);
  auto backend_pid = CONNLEAK_IN(PQbackendPID, r);
  if (status && backend_pid && status(conn) == CONNECTION_OK) rec.server_id = backend_pid(conn);
  std::uint64_t id = Registry::instance().on_open(rec);
  if (options().verbosity >= 2)
    log().info("connleak: libpq connection {} opened: handle {} {} (libpq {})", id,
               static_cast<const void*>(conn), target, r.module);
  ensure_collector_thread();
  if (status && status(conn) == CONNECTION_BAD) note_refusal(conn, r);
}

void track_reset(PGconn* conn) {
  if (!conn) return;
  Reentry guard;
  if (!Registry::instance().on_reset(reinterpret_cast<std::uintptr_t>(conn)) && options().verbosity >= 2)
    log().info("connleak: reset of a handle connleak never saw opened ({})", static_cast<const void*>(conn));
}

// After a command: read the transaction state back from libpq and note a
// transaction beginning (with its stacks) or ending. The hot path, one call per
// query: a thread-local cache hit, one call into libpq, two relaxed loads.
void after_command(PGconn* conn, const Resolution& r) {
  if (!conn) return;
  auto txn_status = CONNLEAK_IN(PQtransactionStatus, r);
  if (!txn_status) return;
  TxnState state;
  switch (txn_status(conn)) {
    case PQTRANS_IDLE: state = TxnState::kIdle; break;
    case PQTRANS_INTRANS: state = TxnState::kInTransaction; break;
    case PQTRANS_INERROR: state = TxnState::kInError; break;
    case PQTRANS_ACTIVE: return;  // a command in flight: the state is known when it completes
    default: state = TxnState::kUnknown; break;
  }
  note_command_state(Library::kLibpq, conn, state);
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

// --- the hook bodies ---------------------------------------------------------

PGconn* impl_PQconnectdb(const Resolution& r, const char* conninfo) {
  PGconn* conn = CONNLEAK_REAL(PQconnectdb)(conninfo);
  if (tracking(r)) track_open(conn, r, [&] { return redact_conninfo(str_or_empty(conninfo)); });
  return conn;
}

PGconn* impl_PQconnectStart(const Resolution& r, const char* conninfo) {
  PGconn* conn = CONNLEAK_REAL(PQconnectStart)(conninfo);
  if (tracking(r)) track_open(conn, r, [&] { return redact_conninfo(str_or_empty(conninfo)); });
  return conn;
}

PGconn* impl_PQconnectdbParams(const Resolution& r, const char* const* keywords, const char* const* values,
                               int expand_dbname) {
  PGconn* conn = CONNLEAK_REAL(PQconnectdbParams)(keywords, values, expand_dbname);
  if (tracking(r)) track_open(conn, r, [&] { return redact_params(keywords, values, expand_dbname != 0); });
  return conn;
}

PGconn* impl_PQconnectStartParams(const Resolution& r, const char* const* keywords,
                                  const char* const* values, int expand_dbname) {
  PGconn* conn = CONNLEAK_REAL(PQconnectStartParams)(keywords, values, expand_dbname);
  if (tracking(r)) track_open(conn, r, [&] { return redact_params(keywords, values, expand_dbname != 0); });
  return conn;
}

PGconn* impl_PQsetdbLogin(const Resolution& r, const char* pghost, const char* pgport, const char* pgoptions,
                          const char* pgtty, const char* dbName, const char* login, const char* pwd) {
  PGconn* conn = CONNLEAK_REAL(PQsetdbLogin)(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
  // `pwd` is never looked at; dbName may itself be a conninfo string.
  if (tracking(r)) {
    track_open(conn, r, [&] {
      return format_target({{"host", str_or_empty(pghost)},
                            {"port", str_or_empty(pgport)},
                            {"dbname", scrub_value(str_or_empty(dbName))},
                            {"user", str_or_empty(login)}});
    });
  }
  return conn;
}

void impl_PQfinish(const Resolution& r, PGconn* conn) {
  // PQfinish(NULL) is a documented no-op: pass it on untouched. A double
  // PQfinish is reported and not forwarded: it would be a double free in libpq.
  if (!conn || !tracking(r) || record_close(Library::kLibpq, conn, "PQfinish") != CloseOutcome::kDoubleClose)
    CONNLEAK_REAL(PQfinish)(conn);
}

void impl_PQreset(const Resolution& r, PGconn* conn) {
  if (tracking(r)) track_reset(conn);
  CONNLEAK_REAL(PQreset)(conn);
}

int impl_PQresetStart(const Resolution& r, PGconn* conn) {
  if (tracking(r)) track_reset(conn);
  return CONNLEAK_REAL(PQresetStart)(conn);
}

// Commands: forwarded untouched; afterwards the transaction state is noted.
#define CONNLEAK_HOOK(...)
#define CONNLEAK_CALL(name)
#define CONNLEAK_COMMAND(name, ret, fail, params, args)         \
  ret impl_##name(const Resolution& r, CONNLEAK_STRIP params) { \
    ret result = CONNLEAK_REAL(name) args;                      \
    if (tracking(r)) after_command(conn, r);                    \
    return result;                                              \
  }
#include "shim/libpq_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL

}  // namespace connleak::shim
