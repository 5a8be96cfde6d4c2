// What the libpq hooks record. Every body follows one pattern:
//   1. pass straight through when libpq calls itself (PQconnectdb calls the
//      exported PQconnectStart, PQping opens and finishes its own connection),
//      when tracking is off, or while the shim is doing its own work;
//   2. otherwise record, with the registry updated before a close frees the
//      handle and after an open returns it.
#include <dlfcn.h>

#include <atomic>
#include <cstring>
#include <string_view>
#include <type_traits>

#include "collector/core/registry.h"
#include "collector/core/string_table.h"
#include "collector/policy/redact.h"
#include "collector/policy/target_memo.h"
#include "collector/util/logger.h"
#include "shim/hooks/libpq_impl.h"
#include "shim/hooks/libpq_probe.h"
#include "shim/python/python_stack.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/runtime/worker_thread.h"
#include "shim/track/activity_track.h"
#include "shim/track/capture.h"
#include "shim/track/live_cache.h"
#include "shim/track/pool_snapshot.h"
#include "shim/track/tracking.h"

namespace connleak::shim {

namespace {

// A function of the same libpq copy as the hooked one (PQstatus, PQhost, ...).
#define CONNLEAK_IN(name, resolution) \
  reinterpret_cast<decltype(&::name)>(resolve_in((resolution).module, kSym_##name))
#define CONNLEAK_REAL(name) reinterpret_cast<decltype(&::name)>(r.real)

bool tracking(const Resolution& r) {
  return !r.self_call && should_track();
}

const char* str_or_empty(const char* s) {
  return s ? s : "";
}

int depth() {
  return static_cast<int>(options().stack_depth);
}

// The target as libpq resolved it (defaults and environment applied), read
// back through the same libpq copy: only whitelisted fields, and none that
// holds the password libpq parsed (PQpass is compared, never printed).
// Interned, and formatted once per distinct inputs (target_memo.h). Null when
// this libpq lacks one of the functions.
const char* live_target(PGconn* conn, const Resolution& r) {
  auto host = CONNLEAK_IN(PQhost, r);
  auto port = CONNLEAK_IN(PQport, r);
  auto db = CONNLEAK_IN(PQdb, r);
  auto user = CONNLEAK_IN(PQuser, r);
  auto pass = CONNLEAK_IN(PQpass, r);
  if (!host || !port || !db || !user) return nullptr;
  return interned_target_without(pass ? str_or_empty(pass(conn)) : "",
                                 {{"host", str_or_empty(host(conn))},
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

// `trust_live` is false when the caller's URI splits its password ambiguously
// (uri_password_ambiguous): libpq's host, port and dbname may then be pieces of
// the password, and only our own redaction of the caller's string is shown.
template <typename FallbackTarget>
void track_open(PGconn* conn, const Resolution& r, bool trust_live, FallbackTarget fallback) {
  if (!conn) return;  // out of memory in libpq: no handle, nothing to leak
  Reentry guard;
  ConnRecord rec;
  rec.handle = reinterpret_cast<std::uintptr_t>(conn);
  rec.part = LibpqPart{};
  rec.thread = current_tid();
  rec.opened = now();
  CapturedStacks stacks = capture_stacks(depth());
  rec.open_stack = stacks.native;
  rec.py_open_stack = stacks.script;
  const char* target = trust_live ? live_target(conn, r) : nullptr;
  if (!target || !*target) target = intern_string(fallback());
  rec.target = target;
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
  ensure_worker_thread();
  if (status && status(conn) == CONNECTION_BAD) note_refusal(conn, r);
}

void track_reset(PGconn* conn) {
  if (!conn) return;
  Reentry guard;
  if (!Registry::instance().on_reset(reinterpret_cast<std::uintptr_t>(conn)) &&
      options().verbosity >= 2)
    log().info("connleak: reset of a handle connleak never saw opened ({})",
               static_cast<const void*>(conn));
}

// After a command: read the transaction state back from libpq and note a
// transaction beginning (with its stacks) or ending. The hot path, one call per
// query: one lookup of the connection's LiveConn (a thread-local cache hit)
// shared by the activity and the transaction state, one call into libpq.
void after_command(PGconn* conn, const Resolution& r) {
  if (!conn) return;
  // Looked up with the resolution (real_symbol.cpp), except for the dlsym
  // wrappers' resolutions.
  auto txn_status = r.txn_status ? reinterpret_cast<decltype(&::PQtransactionStatus)>(r.txn_status)
                                 : CONNLEAK_IN(PQtransactionStatus, r);
  if (!txn_status) return;
  const PGTransactionStatusType status = txn_status(conn);
  LiveConn* live = live_conn_for(reinterpret_cast<std::uintptr_t>(conn));
  if (!live) return;  // a handle we never saw opened
  if (options().statements) note_live_result(*live, status == PQTRANS_ACTIVE);
  TxnState state;
  switch (status) {
    case PQTRANS_IDLE:
      state = TxnState::kIdle;
      break;
    case PQTRANS_INTRANS:
      state = TxnState::kInTransaction;
      break;
    case PQTRANS_INERROR:
      state = TxnState::kInError;
      break;
    case PQTRANS_ACTIVE:
      return;  // a command in flight: the state is known when it completes
    default:
      state = TxnState::kUnknown;
      break;
  }
  note_command_state(*live, Library::kLibpq, conn, state);
}

// Before a command: the statement it sends (option statements). One overload
// per command in libpq_symbols.inc, same parameters; commands that send no
// statement text of their own (PQgetResult, ...) match the catch-all.
using activity::Dialect;
constexpr std::size_t kNul = static_cast<std::size_t>(-1);
std::size_t name_len(const char* name) {
  return name ? std::strlen(name) : 0;
}

// The hook checked options().statements already: the LiveConn lookup (a
// thread-local cache hit) and the record, with no call in between.
void sent(PGconn* conn, const char* sql) {
  if (!conn) return;
  if (LiveConn* live = live_conn_for(reinterpret_cast<std::uintptr_t>(conn)))
    if (activity::Activity* a = live_activity(*live))
      activity::note_statement(*a, sql, kNul, Dialect::kPostgres);
}
void before_PQexec(PGconn* conn, const char* query) {
  sent(conn, query);
}
void before_PQsendQuery(PGconn* conn, const char* query) {
  sent(conn, query);
}
void before_PQexecParams(PGconn* conn, const char* command, int, const Oid*, const char* const*,
                         const int*, const int*, int) {
  sent(conn, command);
}
void before_PQsendQueryParams(PGconn* conn, const char* command, int, const Oid*,
                              const char* const*, const int*, const int*, int) {
  sent(conn, command);
}
void before_PQprepare(PGconn* conn, const char* name, const char* query, int, const Oid*) {
  activity_prepare(conn, name ? name : "", name_len(name), query, kNul, Dialect::kPostgres);
}
void before_PQsendPrepare(PGconn* conn, const char* name, const char* query, int, const Oid*) {
  activity_prepare(conn, name ? name : "", name_len(name), query, kNul, Dialect::kPostgres);
}
void before_PQexecPrepared(PGconn* conn, const char* name, int, const char* const*, const int*,
                           const int*, int) {
  activity_execute(conn, name ? name : "", name_len(name));
}
void before_PQsendQueryPrepared(PGconn* conn, const char* name, int, const char* const*, const int*,
                                const int*, int) {
  activity_execute(conn, name ? name : "", name_len(name));
}
template <typename... A>
void before_other(A...) {}

// A query libpq just accepted (PQsend*, result 1) has not reached the server:
// libpq says PQTRANS_ACTIVE until its results are read (the PQgetResult calls
// note the state then), and the hook before it marked it in flight. Reading
// the state back would change nothing, at ~60 instructions per query.
constexpr bool only_sends(std::string_view name) {
  return name.substr(0, 6) == "PQsend";
}
template <typename R>
bool just_sent(bool sends, R result) {
  if constexpr (std::is_same_v<R, int>)
    return sends && result == 1;
  else
    return false;
}
#define before_PQgetResult before_other
#define before_PQpipelineSync before_other
#define before_PQputCopyEnd before_other

}  // namespace

HandleState libpq_state(const ConnRecord& record) {
  HandleState out;
  if (!record.client_module || !record.client_module[0]) return out;
  void* lib = dlopen(record.client_module, RTLD_LAZY | RTLD_NOLOAD);
  if (!lib) return out;  // that libpq copy was unloaded: the handle is gone with it
  auto* conn = reinterpret_cast<PGconn*>(record.handle);
  if (auto status = reinterpret_cast<decltype(&::PQstatus)>(dlsym(lib, "PQstatus"))) {
    switch (status(conn)) {
      case CONNECTION_OK:
        out.state = "connected";
        break;
      case CONNECTION_BAD:
        out.state = "failed";
        break;
      default:
        out.state = "connecting";
        break;
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
  if (tracking(r))
    no_throw([&] {
      track_open(conn, r, !uri_password_ambiguous(str_or_empty(conninfo)),
                 [&] { return redact_conninfo(str_or_empty(conninfo)); });
    });
  return conn;
}

PGconn* impl_PQconnectStart(const Resolution& r, const char* conninfo) {
  PGconn* conn = CONNLEAK_REAL(PQconnectStart)(conninfo);
  if (tracking(r))
    no_throw([&] {
      track_open(conn, r, !uri_password_ambiguous(str_or_empty(conninfo)),
                 [&] { return redact_conninfo(str_or_empty(conninfo)); });
    });
  return conn;
}

PGconn* impl_PQconnectdbParams(const Resolution& r, const char* const* keywords,
                               const char* const* values, int expand_dbname) {
  PGconn* conn = CONNLEAK_REAL(PQconnectdbParams)(keywords, values, expand_dbname);
  if (tracking(r))
    no_throw([&] {
      track_open(conn, r, !params_password_ambiguous(keywords, values, expand_dbname != 0),
                 [&] { return redact_params(keywords, values, expand_dbname != 0); });
    });
  return conn;
}

PGconn* impl_PQconnectStartParams(const Resolution& r, const char* const* keywords,
                                  const char* const* values, int expand_dbname) {
  PGconn* conn = CONNLEAK_REAL(PQconnectStartParams)(keywords, values, expand_dbname);
  if (tracking(r))
    no_throw([&] {
      track_open(conn, r, !params_password_ambiguous(keywords, values, expand_dbname != 0),
                 [&] { return redact_params(keywords, values, expand_dbname != 0); });
    });
  return conn;
}

PGconn* impl_PQsetdbLogin(const Resolution& r, const char* pghost, const char* pgport,
                          const char* pgoptions, const char* pgtty, const char* dbName,
                          const char* login, const char* pwd) {
  PGconn* conn = CONNLEAK_REAL(PQsetdbLogin)(pghost, pgport, pgoptions, pgtty, dbName, login, pwd);
  // `pwd` is never looked at; dbName may itself be a conninfo string.
  if (tracking(r)) {
    no_throw([&] {
      track_open(conn, r, !uri_password_ambiguous(str_or_empty(dbName)), [&] {
        return format_target({{"host", str_or_empty(pghost)},
                              {"port", str_or_empty(pgport)},
                              {"dbname", scrub_value(str_or_empty(dbName))},
                              {"user", str_or_empty(login)}});
      });
    });
  }
  return conn;
}

void impl_PQfinish(const Resolution& r, PGconn* conn) {
  // PQfinish(NULL) is a documented no-op: pass it on untouched. A double
  // PQfinish is reported and not forwarded: it would be a double free in libpq.
  // If recording throws, the close is forwarded: the host's close always happens.
  CloseOutcome outcome = CloseOutcome::kClosed;
  if (conn && tracking(r))
    no_throw([&] { outcome = record_close(Library::kLibpq, conn, "PQfinish"); });
  if (outcome != CloseOutcome::kDoubleClose) CONNLEAK_REAL(PQfinish)(conn);
}

void impl_PQreset(const Resolution& r, PGconn* conn) {
  if (tracking(r)) no_throw([&] { track_reset(conn); });
  CONNLEAK_REAL(PQreset)(conn);
}

// A non-blocking connect (PQconnectStart + PQconnectPoll: psycopg 3, psycopg2's
// async mode, an event loop's driver) is refused during a poll, long after
// PQconnectStart returned: the refusal snapshot is written when the poll
// fails. (A blocking connect's own polls are inside libpq and come back
// through track_open; the snapshot's interval keeps it to one either way.)
PostgresPollingStatusType impl_PQconnectPoll(const Resolution& r, PGconn* conn) {
  PostgresPollingStatusType status = CONNLEAK_REAL(PQconnectPoll)(conn);
  if (status == PGRES_POLLING_FAILED && conn && tracking(r))
    no_throw([&] {
      Reentry guard;
      note_refusal(conn, r);
    });
  return status;
}

int impl_PQresetStart(const Resolution& r, PGconn* conn) {
  if (tracking(r)) no_throw([&] { track_reset(conn); });
  return CONNLEAK_REAL(PQresetStart)(conn);
}

// Commands: forwarded untouched; afterwards the transaction state is noted.
#define CONNLEAK_HOOK(...)
#define CONNLEAK_CALL(name)
#define CONNLEAK_COMMAND(name, ret, fail, params, args)                                            \
  ret impl_##name(const Resolution& r, CONNLEAK_STRIP params) {                                    \
    const bool track = tracking(r);                                                                \
    if (track && options().statements) before_##name args;                                         \
    ret result = CONNLEAK_REAL(name) args;                                                         \
    if (track && !just_sent(only_sends(#name), result)) no_throw([&] { after_command(conn, r); }); \
    return result;                                                                                 \
  }
#include "shim/hooks/libpq_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL

}  // namespace connleak::shim
