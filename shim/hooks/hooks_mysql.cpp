// Interposed MySQL / MariaDB client entry points (libmariadb, libmysqlclient).
// Same pattern as hooks_libpq.cpp: resolve the real function in the caller's
// scope, pass the library's calls into itself straight through, record the
// rest. Two things differ from libpq:
//  - a handle's life starts at mysql_init, before any connect: the registry
//    record is made there (its MysqlPart says where the handle is in its
//    life), and what a connect later learns (phase, server thread id, target,
//    the connect's stack) is written into that record;
//  - a MYSQL may live on the caller's stack (`MYSQL m; mysql_init(&m)`) and be
//    gone by report time: nothing here touches a handle outside the call that
//    handed it to us, and the report only reads the record.
// No side table: everything about a handle exists from mysql_init on, when
// its record does. Only t_reconnect below is this file's own, and it lives
// for one client call.
#include <mysql.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <span>
#include <string>

#include "collector/core/registry.h"
#include "collector/core/stack_depot.h"
#include "collector/core/string_table.h"
#include "collector/policy/target_memo.h"
#include "collector/util/logger.h"
#include "collector/util/timeutil.h"
#include "shim/hooks/mysql_probe.h"
#include "shim/hooks/real_symbol.h"
#include "shim/python/python_stack.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/runtime/worker_thread.h"
#include "shim/track/capture.h"
#include "shim/track/pool_snapshot.h"
#include "shim/track/tracking.h"

// MySQL 8's non-blocking connect (libmysqlclient 21+). MariaDB's headers do not
// declare it; the layout follows MySQL's mysql.h.
extern "C" {
enum net_async_status {
  NET_ASYNC_COMPLETE = 0,
  NET_ASYNC_NOT_READY,
  NET_ASYNC_ERROR,
  NET_ASYNC_COMPLETE_NO_MORE_RESULTS
};
net_async_status mysql_real_connect_nonblocking(MYSQL* mysql, const char* host, const char* user,
                                                const char* passwd, const char* db,
                                                unsigned int port, const char* unix_socket,
                                                unsigned long clientflag);
}

namespace connleak::shim {

namespace {

#define CONNLEAK_REAL(name, resolution) reinterpret_cast<decltype(&::name)>((resolution).real)
// A function of the same client-library copy as the hooked one, whoever the
// caller is (through ctypes the caller is libffi, which links no client).
#define CONNLEAK_IN(name, resolution) \
  reinterpret_cast<decltype(&::name)>(resolve_in((resolution).module, kSym_##name))

const char* str_or_empty(const char* s) {
  return s ? s : "";
}
std::uintptr_t key(const MYSQL* m) {
  return reinterpret_cast<std::uintptr_t>(m);
}
int depth() {
  return static_cast<int>(options().stack_depth);
}

// --- MariaDB's reconnect -------------------------------------------------------
// mariadb_reconnect() connects a temporary MYSQL on its own stack (self-calls to
// mysql_init and mysql_real_connect), mysql_close()s the original and copies
// the temporary over it. Those calls pass through unrecorded; this only carries
// the new server thread id from the temporary's connect to the original's
// close, both on this thread within one client call.
struct PendingReconnect {
  std::uintptr_t temp = 0;  // 0: none
  std::int64_t thread_id = -1;
};
thread_local PendingReconnect t_reconnect __attribute__((tls_model("initial-exec")));

std::int64_t thread_id_of(MYSQL* m, const Resolution& r) {
  auto tid = CONNLEAK_IN(mysql_thread_id, r);
  return tid ? static_cast<std::int64_t>(tid(m)) : -1;
}

// The target as the library resolved it (defaults, option files and the
// environment applied), read back from the connected handle through MariaDB's
// mariadb_get_infov. Never the password: only whitelisted fields, and none
// holding `passwd` (the connect's password argument, compared, never kept).
// Interned, formatted once per distinct inputs (target_memo.h); null when the
// handle cannot say.
const char* live_target(MYSQL* m, const Resolution& r, const char* passwd) {
  auto info = CONNLEAK_IN(mariadb_get_infov, r);
  if (!info) return nullptr;  // MySQL's libmysqlclient: the connect arguments serve instead
  const char *host = nullptr, *socket = nullptr, *user = nullptr, *db = nullptr;
  unsigned int port = 0, pvio = ~0u;
  if (info(m, MARIADB_CONNECTION_HOST, &host) || info(m, MARIADB_CONNECTION_USER, &user))
    return nullptr;
  info(m, MARIADB_CONNECTION_SCHEMA, &db);
  info(m, MARIADB_CONNECTION_PORT, &port);
  info(m, MARIADB_CONNECTION_UNIX_SOCKET, &socket);
  // PVIO_TYPE_UNIXSOCKET (ma_pvio.h) is 0: a socket connection has no port that matters.
  bool unix_socket = !info(m, MARIADB_CONNECTION_PVIO_TYPE, &pvio) && pvio == 0;
  char port_text[16] = "";
  if (!unix_socket && port != 0) std::snprintf(port_text, sizeof port_text, "%u", port);
  return interned_target_without(str_or_empty(passwd),
                                 {{"host", str_or_empty(host)},
                                  {"port", port_text},
                                  {"socket", unix_socket ? str_or_empty(socket) : ""},
                                  {"dbname", str_or_empty(db)},
                                  {"user", str_or_empty(user)}});
}

// The connect arguments, for a failed connect and for client libraries without
// mariadb_get_infov. `passwd` is only compared with the other fields (a
// password that is also the user or the database name is left out); it lives
// as long as the hooked call, never stored.
struct ConnectArgs {
  const char* host;
  const char* user;
  const char* db;
  unsigned int port;
  const char* unix_socket;
  const char* passwd;

  // Interned (target_memo.h).
  const char* target() const {
    char port_text[16] = "";
    if (port) std::snprintf(port_text, sizeof port_text, "%u", port);
    return interned_target_without(str_or_empty(passwd), {{"host", str_or_empty(host)},
                                                          {"port", port_text},
                                                          {"socket", str_or_empty(unix_socket)},
                                                          {"dbname", str_or_empty(db)},
                                                          {"user", str_or_empty(user)}});
  }
};

// Where the connection was made: the connect's caller, unlike mysql_init's
// (which may sit in another function, e.g. a handle factory).
bool same_function(StackId a, StackId b) {
  // Identical callers above the first frame: both calls came from one
  // invocation of one function (frame 0 differs only by the call's address).
  std::span<const std::uintptr_t> x = StackDepot::instance().get(a);
  std::span<const std::uintptr_t> y = StackDepot::instance().get(b);
  return x.size() == y.size() &&
         std::equal(x.begin() + (x.empty() ? 0 : 1), x.end(), y.begin() + (y.empty() ? 0 : 1));
}

void take_connect_site(ConnRecord& rec, MysqlPart& part, const CapturedStacks& site) {
  rec.open_stack = site.native;
  rec.py_open_stack = site.script;
  rec.thread = current_tid();
  part.init_elsewhere = part.init_stack != 0 && !same_function(part.init_stack, site.native);
}

// `from_init`: the stacks are mysql_init's (kept in the part once a connect
// moves the record's open stack to itself).
std::uint64_t record_open(MYSQL* m, const Resolution& r, MysqlPhase phase, const char* target,
                          std::int64_t server_id, const CapturedStacks& stacks, bool from_init) {
  ConnRecord rec;
  rec.handle = key(m);
  MysqlPart part;
  part.phase = phase;
  if (from_init) {
    part.init_stack = stacks.native;
    part.py_init_stack = stacks.script;
  }
  rec.part = part;
  rec.thread = current_tid();
  rec.opened = now();
  rec.open_stack = stacks.native;
  rec.py_open_stack = stacks.script;
  rec.target = target;
  rec.client_module = r.module;
  rec.server_id = server_id;
  std::uint64_t id = Registry::instance().on_open(rec);
  ensure_worker_thread();  // threshold alerts and dumps, for MySQL-only processes too
  return id;
}

void track_init(MYSQL* m, const Resolution& r) {
  Reentry guard;
  // And the Python stack in a CPython host.
  std::uint64_t id =
      record_open(m, r, MysqlPhase::kInitialized, "", -1, capture_stacks(depth()), true);
  if (options().verbosity >= 2)
    log().info("connleak: mysql handle {} initialized (connection {}, {})",
               static_cast<const void*>(m), id, r.module);
}

// A (non-blocking) connect begins: the stack is taken here, in the caller's
// frame (the _cont calls that finish it may come from anywhere).
void track_connect_start(MYSQL* m, const Resolution& r, const ConnectArgs& args) {
  Reentry guard;
  const char* target = args.target();
  CapturedStacks site = capture_stacks(depth());  // outside the registry's lock
  bool known = false;  // a MySQL record: the address may be a stale one of another library's
  Registry::instance().update(key(m), [&](ConnRecord& rec) {
    MysqlPart* part = rec.mysql();
    if (!part) return;
    known = true;
    part->phase = MysqlPhase::kConnecting;
    rec.target = target;
    take_connect_site(rec, *part, site);
  });
  if (!known) record_open(m, r, MysqlPhase::kConnecting, target, -1, site, false);
}

// A connect finished. `args` is null for a non-blocking connect finished in a
// _cont call (the arguments were taken at _start).
// The server refused for want of connections: ER_CON_COUNT_ERROR (1040),
// ER_TOO_MANY_USER_CONNECTIONS (1203, the global max_user_connections) or
// ER_USER_LIMIT_REACHED (1226, an account's own MAX_USER_CONNECTIONS; MariaDB
// also uses it for the other per-account limits, whose text differs: the code
// alone is taken, a refusal of the account is what it is). One snapshot of
// every open connection.
void note_refusal(MYSQL* m, const Resolution& r) {
  auto err = CONNLEAK_IN(mysql_errno, r);
  unsigned int code = err ? err(m) : 0;
  if (code == 1040)
    write_refusal_snapshot("MySQL error 1040: Too many connections");
  else if (code == 1203)
    write_refusal_snapshot(
        "MySQL error 1203: the user has too many connections (max_user_connections)");
  else if (code == 1226)  // an account's own limit (CREATE USER ... WITH MAX_USER_CONNECTIONS n)
    write_refusal_snapshot(
        "MySQL error 1226: the account has reached its connection limit (MAX_USER_CONNECTIONS)");
}

// `at_call_site`: this is the connect call itself (mysql_real_connect), whose
// caller is where the connection was made; false when a _start call took the
// stack already.
void track_connect_done(MYSQL* m, bool ok, const Resolution& r, const ConnectArgs* args,
                        bool at_call_site) {
  Reentry guard;
  if (!ok) note_refusal(m, r);
  std::int64_t thread_id = ok ? thread_id_of(m, r) : -1;
  const char* interned = ok ? live_target(m, r, args ? args->passwd : nullptr) : nullptr;
  if ((!interned || !*interned) && args) interned = args->target();
  if (interned && !*interned) interned = nullptr;
  // Outside the registry's lock (a Python stack may wait for the GIL).
  CapturedStacks site = at_call_site ? capture_stacks(depth()) : CapturedStacks{};
  bool known = false;  // as in track_connect_start
  Registry::instance().update(key(m), [&](ConnRecord& rec) {
    MysqlPart* part = rec.mysql();
    if (!part) return;
    known = true;
    if (ok) {
      part->phase = MysqlPhase::kConnected;
      rec.server_id = thread_id;
    } else if (part->phase != MysqlPhase::kConnected) {
      // A connect over a connected handle fails (CR_ALREADY_CONNECTED) and
      // leaves it connected; otherwise the handle now holds a failed connect.
      part->phase = MysqlPhase::kFailed;
    } else {
      return;
    }
    if (interned) rec.target = interned;
    if (at_call_site) take_connect_site(rec, *part, site);
  });
  if (!known) {
    // Connected without a mysql_init we saw (e.g. initialized through a
    // dlsym'd pointer): its life starts here.
    if (!at_call_site) site = capture_stacks(depth());
    record_open(m, r, ok ? MysqlPhase::kConnected : MysqlPhase::kFailed, interned ? interned : "",
                thread_id, site, false);
  }
  if (options().verbosity >= 2)
    log().info("connleak: mysql handle {} {} {} (thread id {})", static_cast<const void*>(m),
               ok ? "connected" : "failed to connect", interned ? interned : "", thread_id);
}

// Returns false when the real close must NOT run: closing a closed handle is a
// double free inside the client library, so it is reported and suppressed.
bool track_close(MYSQL* m, const char* fn) {
  return record_close(Library::kMysql, m, fn) != CloseOutcome::kDoubleClose;
}

// The library connected a MYSQL of its own (reconnect's temporary, or the
// coroutine side of mysql_real_connect_start for a handle we already track).
void note_self_connect(MYSQL* m, const Resolution& r) {
  Reentry guard;
  bool tracked = false;
  Registry::instance().inspect(key(m),
                               [&](const ConnRecord& rec) { tracked = rec.mysql() != nullptr; });
  if (tracked) return;  // not a temporary
  t_reconnect = {key(m), thread_id_of(m, r)};
}

// The library closes a MYSQL itself. A tracked, connected handle closed right
// after the library connected a temporary is the reconnect pattern: the handle
// lives on (the temporary is copied over it) with the temporary's thread id.
void note_self_close(MYSQL* m) {
  PendingReconnect pending = t_reconnect;
  if (pending.temp == 0) return;
  t_reconnect = {};
  if (pending.temp == key(m)) return;  // the temporary itself: its connect was abandoned
  Reentry guard;
  Registry::instance().update(key(m), [&](ConnRecord& rec) {
    if (const MysqlPart* part = rec.mysql(); part && part->phase == MysqlPhase::kConnected)
      rec.server_id = pending.thread_id;
  });
}

void refresh_target(MYSQL* m, const Resolution& r, const char* passwd) {
  Reentry guard;
  const char* interned = live_target(m, r, passwd);
  if (!interned || !*interned) return;
  Registry::instance().update(key(m), [&](ConnRecord& rec) {
    if (const MysqlPart* part = rec.mysql(); part && part->phase == MysqlPhase::kConnected)
      rec.target = interned;
  });
}

}  // namespace

// From the record alone: the handle itself may be gone (a stack MYSQL) or freed.
HandleState mysql_state(const ConnRecord& record) {
  HandleState out;
  const MysqlPart* part = record.mysql();
  if (!part) return out;
  out.state = mysql_phase_name(part->phase);
  if (part->phase == MysqlPhase::kConnected) out.server_id = record.server_id;
  return out;
}

}  // namespace connleak::shim

using namespace connleak;
using namespace connleak::shim;

#define CONNLEAK_HOOK_PROLOGUE(name, fail)          \
  const void* caller = __builtin_return_address(0); \
  Resolution r = resolve(kSym_##name, caller);      \
  auto real = CONNLEAK_REAL(name, r);               \
  if (!real) {                                      \
    report_missing(#name);                          \
    fail;                                           \
  }

CONNLEAK_EXPORT MYSQL* mysql_init(MYSQL* mysql) {
  CONNLEAK_HOOK_PROLOGUE(mysql_init, return nullptr)
  // Self-calls: mariadb_reconnect initializes its temporary with mysql_init.
  if (r.self_call || !should_track()) return real(mysql);
  MYSQL* m = real(mysql);
  if (m) no_throw([&] { track_init(m, r); });  // NULL: out of memory, nothing to leak
  return m;
}

CONNLEAK_EXPORT MYSQL* mysql_real_connect(MYSQL* mysql, const char* host, const char* user,
                                          const char* passwd, const char* db, unsigned int port,
                                          const char* unix_socket, unsigned long clientflag) {
  CONNLEAK_HOOK_PROLOGUE(mysql_real_connect, return nullptr)
  MYSQL* res = real(mysql, host, user, passwd, db, port, unix_socket, clientflag);
  if (!mysql || !should_track()) return res;
  if (r.self_call) {
    if (res) no_throw([&] { note_self_connect(mysql, r); });
    return res;
  }
  ConnectArgs args{host, user, db, port, unix_socket, passwd};
  no_throw([&] { track_connect_done(mysql, res != nullptr, r, &args, true); });
  return res;
}

CONNLEAK_EXPORT void mysql_close(MYSQL* mysql) {
  CONNLEAK_HOOK_PROLOGUE(mysql_close, return )
  // mysql_close(NULL) is a documented no-op.
  if (!mysql || !should_track()) return real(mysql);
  if (r.self_call) {
    no_throw([&] { note_self_close(mysql); });
    return real(mysql);
  }
  bool forward = true;
  no_throw([&] { forward = track_close(mysql, "mysql_close"); });
  if (forward) real(mysql);
}

// Same connection, same server thread, same record: only the target's user
// and database change, so the record's target is refreshed.
CONNLEAK_EXPORT my_bool mysql_change_user(MYSQL* mysql, const char* user, const char* passwd,
                                          const char* db) {
  CONNLEAK_HOOK_PROLOGUE(mysql_change_user, return 1)
  my_bool failed = real(mysql, user, passwd, db);
  if (!r.self_call && mysql && !failed && should_track())
    no_throw([&] { refresh_target(mysql, r, passwd); });
  return failed;
}

// Resets session state on the same connection and server thread: nothing
// changes for the record. Interposed so the call shows in the debug log
// (verbosity=2); a reconnect it triggers happens inside the library, through
// the self-call path like any other.
CONNLEAK_EXPORT int mysql_reset_connection(MYSQL* mysql) {
  CONNLEAK_HOOK_PROLOGUE(mysql_reset_connection, return 1)
  if (!r.self_call && should_track() && options().verbosity >= 2)
    log().info("connleak: mysql handle {} reset", static_cast<const void*>(mysql));
  return real(mysql);
}

// MariaDB's non-blocking connect runs mysql_real_connect on a coroutine stack
// inside libmariadb (a self-call, passed through) and finishes in a later
// _start or _cont call that returns 0 with the result in *ret.
CONNLEAK_EXPORT int mysql_real_connect_start(MYSQL** ret, MYSQL* mysql, const char* host,
                                             const char* user, const char* passwd, const char* db,
                                             unsigned int port, const char* unix_socket,
                                             unsigned long clientflag) {
  CONNLEAK_HOOK_PROLOGUE(mysql_real_connect_start, if (ret)* ret = nullptr; return 0)
  if (r.self_call || !mysql || !should_track())
    return real(ret, mysql, host, user, passwd, db, port, unix_socket, clientflag);
  ConnectArgs args{host, user, db, port, unix_socket, passwd};
  no_throw([&] { track_connect_start(mysql, r, args); });
  int status = real(ret, mysql, host, user, passwd, db, port, unix_socket, clientflag);
  if (status == 0) no_throw([&] { track_connect_done(mysql, ret && *ret, r, &args, false); });
  return status;
}

CONNLEAK_EXPORT int mysql_real_connect_cont(MYSQL** ret, MYSQL* mysql, int ready_status) {
  CONNLEAK_HOOK_PROLOGUE(mysql_real_connect_cont, if (ret)* ret = nullptr; return 0)
  int status = real(ret, mysql, ready_status);
  if (status == 0 && !r.self_call && mysql && should_track())
    no_throw([&] { track_connect_done(mysql, ret && *ret, r, nullptr, false); });
  return status;
}

// The handle leaves the registry here, before any of the calls that may free
// it: the final step (a self-call to mysql_close) can come in a later _cont.
CONNLEAK_EXPORT int mysql_close_start(MYSQL* mysql) {
  CONNLEAK_HOOK_PROLOGUE(mysql_close_start, return 0)
  if (r.self_call || !mysql || !should_track()) return real(mysql);
  bool forward = true;
  no_throw([&] { forward = track_close(mysql, "mysql_close_start"); });
  return forward ? real(mysql) : 0;  // a suppressed double close is "done"
}

// A pure pass-through: the close was counted at _start. Counting here would
// come too late, since the handle may be freed inside this very call (by
// libmariadb's own mysql_close, a self-call).
CONNLEAK_EXPORT int mysql_close_cont(MYSQL* mysql, int ready_status) {
  CONNLEAK_HOOK_PROLOGUE(mysql_close_cont, return 0)
  return real(mysql, ready_status);
}

// MySQL 8: called again with the same arguments until it stops returning
// NET_ASYNC_NOT_READY. The first call of a round starts the connect (and takes
// the stack); the last one settles it.
CONNLEAK_EXPORT net_async_status mysql_real_connect_nonblocking(
    MYSQL* mysql, const char* host, const char* user, const char* passwd, const char* db,
    unsigned int port, const char* unix_socket, unsigned long clientflag) {
  CONNLEAK_HOOK_PROLOGUE(mysql_real_connect_nonblocking, return NET_ASYNC_ERROR)
  if (r.self_call || !mysql || !should_track())
    return real(mysql, host, user, passwd, db, port, unix_socket, clientflag);
  ConnectArgs args{host, user, db, port, unix_socket, passwd};
  no_throw([&] {
    bool in_progress = false;
    Registry::instance().inspect(key(mysql), [&](const ConnRecord& rec) {
      const MysqlPart* part = rec.mysql();
      in_progress = part && part->phase == MysqlPhase::kConnecting;
    });
    if (!in_progress) track_connect_start(mysql, r, args);
  });
  net_async_status status = real(mysql, host, user, passwd, db, port, unix_socket, clientflag);
  if (status != NET_ASYNC_NOT_READY)
    no_throw([&] { track_connect_done(mysql, status != NET_ASYNC_ERROR, r, &args, false); });
  return status;
}
