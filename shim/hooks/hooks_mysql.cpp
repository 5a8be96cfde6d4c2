// Interposed MySQL / MariaDB client entry points (libmariadb, libmysqlclient).
// Same pattern as hooks_libpq.cpp: resolve the real function in the caller's
// scope, pass the library's calls into itself straight through, record the
// rest. Two things differ from libpq:
//  - a handle's life starts at mysql_init, before any connect: the registry
//    record is made there, and what a connect later learns (state, server
//    thread id, target) goes into this file's side table, which mysql_state()
//    reads at report time;
//  - a MYSQL may live on the caller's stack (`MYSQL m; mysql_init(&m)`) and be
//    gone by report time: nothing here touches a handle outside the call that
//    handed it to us, and the report only reads the side table.
#include <mysql.h>
#include <pthread.h>
#include <sched.h>

#include <array>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <new>
#include <string>
#include <unordered_map>

#include "collector/core/fork_mutex.h"
#include "collector/core/fork_safe_static.h"
#include "collector/core/registry.h"
#include "collector/core/string_table.h"
#include "collector/policy/redact.h"
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

// --- side table -------------------------------------------------------------
// What the report needs about a handle, written while the handle is known to be
// alive (inside the hooks), read at report time without touching the handle.

enum class Phase : std::uint8_t { kInitialized, kConnecting, kConnected, kFailed };

const char* phase_name(Phase p) {
  switch (p) {
    case Phase::kInitialized:
      return "initialized";
    case Phase::kConnecting:
      return "connecting";
    case Phase::kConnected:
      return "connected";
    case Phase::kFailed:
      return "failed";
  }
  return "unknown";
}

struct HandleInfo {
  std::uint64_t record_id = 0;  // the registry record this describes (addresses get reused)
  Phase phase = Phase::kInitialized;
  std::int64_t thread_id = -1;  // mysql_thread_id once connected
  const char* target = "";      // interned, redacted
};

// Sharded like the registry. Its locks are never held while calling the
// registry or the client library, so they order freely against both.
class HandleTable {
 public:
  static HandleTable& instance() {
    // Never destroyed: read by the exit report. Its locks are ForkMutexes, so
    // fork handling comes with them.
    HandleTable& table = fork_safe_static([] { return new HandleTable; });
    return table;
  }

  void put(std::uintptr_t h, const HandleInfo& info) {
    Shard& s = shard(h);
    std::lock_guard<ForkMutex> lock(s.mutex);
    s.map.insert_or_assign(h, info);
  }
  bool get(std::uintptr_t h, HandleInfo* out) {
    Shard& s = shard(h);
    std::lock_guard<ForkMutex> lock(s.mutex);
    auto it = s.map.find(h);
    if (it == s.map.end()) return false;
    *out = it->second;
    return true;
  }
  // Report time: other threads may still be in hooks, so the lock is only
  // tried until the deadline. After one miss, later lookups only try once: a
  // report with many handles must not wait once per handle.
  bool get_until(std::uintptr_t h, std::int64_t deadline_mono_ns, HandleInfo* out) {
    Shard& s = shard(h);
    while (!s.mutex.try_lock()) {
      if (gave_up_.load(std::memory_order_relaxed) || mono_now_ns() >= deadline_mono_ns) {
        gave_up_.store(true, std::memory_order_relaxed);
        return false;
      }
      sched_yield();
    }
    auto it = s.map.find(h);
    bool found = it != s.map.end();
    if (found) *out = it->second;
    s.mutex.unlock();
    return found;
  }
  template <typename Fn>
  bool update(std::uintptr_t h, Fn&& fn) {
    Shard& s = shard(h);
    std::lock_guard<ForkMutex> lock(s.mutex);
    auto it = s.map.find(h);
    if (it == s.map.end()) return false;
    fn(it->second);
    return true;
  }
  void erase(std::uintptr_t h) {
    Shard& s = shard(h);
    std::lock_guard<ForkMutex> lock(s.mutex);
    s.map.erase(h);
  }

 private:
  struct Shard {
    ForkMutex mutex;
    std::unordered_map<std::uintptr_t, HandleInfo> map;
  };
  static constexpr std::size_t kShards = 16;
  Shard& shard(std::uintptr_t h) { return shards_[(h >> 4) % kShards]; }

  std::array<Shard, kShards> shards_;
  std::atomic<bool> gave_up_{false};
};

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
std::string live_target(MYSQL* m, const Resolution& r, const char* passwd) {
  auto info = CONNLEAK_IN(mariadb_get_infov, r);
  if (!info) return {};  // MySQL's libmysqlclient: the connect arguments serve instead
  const char *host = nullptr, *socket = nullptr, *user = nullptr, *db = nullptr;
  unsigned int port = 0, pvio = ~0u;
  if (info(m, MARIADB_CONNECTION_HOST, &host) || info(m, MARIADB_CONNECTION_USER, &user)) return {};
  info(m, MARIADB_CONNECTION_SCHEMA, &db);
  info(m, MARIADB_CONNECTION_PORT, &port);
  info(m, MARIADB_CONNECTION_UNIX_SOCKET, &socket);
  // PVIO_TYPE_UNIXSOCKET (ma_pvio.h) is 0: a socket connection has no port that matters.
  bool unix_socket = !info(m, MARIADB_CONNECTION_PVIO_TYPE, &pvio) && pvio == 0;
  std::string port_text = unix_socket || port == 0 ? std::string() : std::to_string(port);
  return format_target_without(str_or_empty(passwd),
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

  std::string target() const {
    std::string port_text = port ? std::to_string(port) : std::string();
    return format_target_without(str_or_empty(passwd), {{"host", str_or_empty(host)},
                                                        {"port", port_text},
                                                        {"socket", str_or_empty(unix_socket)},
                                                        {"dbname", str_or_empty(db)},
                                                        {"user", str_or_empty(user)}});
  }
};

std::uint64_t record_open(MYSQL* m, const Resolution& r, const char* target,
                          std::int64_t server_id) {
  ConnRecord rec;
  rec.handle = key(m);
  rec.library = Library::kMysql;
  rec.thread = current_tid();
  rec.opened = now();
  CapturedStacks stacks = capture_stacks(depth());  // and the Python stack in a CPython host
  rec.open_stack = stacks.native;
  rec.py_open_stack = stacks.python;
  rec.target = target;
  rec.client_module = r.module;
  rec.server_id = server_id;
  std::uint64_t id = Registry::instance().on_open(rec);
  ensure_worker_thread();  // threshold alerts and dumps, for MySQL-only processes too
  return id;
}

void track_init(MYSQL* m, const Resolution& r) {
  Reentry guard;
  HandleInfo info;
  info.record_id = record_open(m, r, "", -1);
  HandleTable::instance().put(key(m), info);
  if (options().verbosity >= 2)
    log().info("connleak: mysql handle {} initialized (connection {}, {})",
               static_cast<const void*>(m), info.record_id, r.module);
}

// A (non-blocking) connect begins: the stack is taken here, in the caller's
// frame, for a handle whose mysql_init we did not see.
void track_connect_start(MYSQL* m, const Resolution& r, const ConnectArgs& args) {
  Reentry guard;
  const char* target = intern_string(args.target());
  bool known = HandleTable::instance().update(key(m), [&](HandleInfo& i) {
    i.phase = Phase::kConnecting;
    i.target = target;
  });
  if (known) return;
  HandleInfo info;
  info.record_id = record_open(m, r, target, -1);
  info.phase = Phase::kConnecting;
  info.target = target;
  HandleTable::instance().put(key(m), info);
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

void track_connect_done(MYSQL* m, bool ok, const Resolution& r, const ConnectArgs* args) {
  Reentry guard;
  if (!ok) note_refusal(m, r);
  std::int64_t thread_id = ok ? thread_id_of(m, r) : -1;
  std::string target = ok ? live_target(m, r, args ? args->passwd : nullptr) : std::string();
  if (target.empty() && args) target = args->target();
  const char* interned = target.empty() ? nullptr : intern_string(target);
  bool known = HandleTable::instance().update(key(m), [&](HandleInfo& i) {
    if (ok) {
      i.phase = Phase::kConnected;
      i.thread_id = thread_id;
    } else if (i.phase != Phase::kConnected) {
      // A connect over a connected handle fails (CR_ALREADY_CONNECTED) and
      // leaves it connected; otherwise the handle now holds a failed connect.
      i.phase = Phase::kFailed;
    } else {
      return;
    }
    if (interned) i.target = interned;
  });
  if (known) {
    // The record too, so a closed-then-reported entry (double close, alert)
    // still names its target and server session.
    Registry::instance().update(key(m), [&](ConnRecord& rec) {
      if (interned) rec.target = interned;
      if (thread_id >= 0) rec.server_id = thread_id;
    });
  } else {
    // Connected without a mysql_init we saw (e.g. initialized through a
    // dlsym'd pointer): its life starts here.
    HandleInfo info;
    info.phase = ok ? Phase::kConnected : Phase::kFailed;
    info.thread_id = thread_id;
    info.target = interned ? interned : "";
    info.record_id = record_open(m, r, info.target, thread_id);
    HandleTable::instance().put(key(m), info);
  }
  if (options().verbosity >= 2)
    log().info("connleak: mysql handle {} {} {} (thread id {})", static_cast<const void*>(m),
               ok ? "connected" : "failed to connect", target, thread_id);
}

// Returns false when the real close must NOT run: closing a closed handle is a
// double free inside the client library, so it is reported and suppressed.
bool track_close(MYSQL* m, const char* fn) {
  CloseOutcome outcome = record_close(Library::kMysql, m, fn);
  if (outcome != CloseOutcome::kDoubleClose) HandleTable::instance().erase(key(m));
  return outcome != CloseOutcome::kDoubleClose;
}

// The library connected a MYSQL of its own (reconnect's temporary, or the
// coroutine side of mysql_real_connect_start for a handle we already track).
void note_self_connect(MYSQL* m, const Resolution& r) {
  Reentry guard;
  HandleInfo ignored;
  if (HandleTable::instance().get(key(m), &ignored)) return;  // a tracked handle: not a temporary
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
  HandleTable::instance().update(key(m), [&](HandleInfo& i) {
    if (i.phase == Phase::kConnected) i.thread_id = pending.thread_id;
  });
}

void refresh_target(MYSQL* m, const Resolution& r, const char* passwd) {
  Reentry guard;
  std::string target = live_target(m, r, passwd);
  if (target.empty()) return;
  const char* interned = intern_string(target);
  HandleTable::instance().update(key(m), [&](HandleInfo& i) {
    if (i.phase == Phase::kConnected) i.target = interned;
  });
}

}  // namespace

HandleState mysql_state(const ConnRecord& record) {
  HandleState out;
  HandleInfo info;
  // Never the handle itself: a stack MYSQL may be gone, a heap one freed.
  if (!HandleTable::instance().get_until(record.handle, mono_now_ns() + 50'000'000, &info))
    return out;
  if (info.record_id != record.id) return out;  // the side entry belongs to a later record
  out.state = phase_name(info.phase);
  if (info.phase == Phase::kConnected) out.server_id = info.thread_id;
  // The record was made at mysql_init, before the connect named host, user and
  // database: the side table's target replaces it in the report.
  out.target = info.target ? info.target : "";
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
  no_throw([&] { track_connect_done(mysql, res != nullptr, r, &args); });
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
// and database change, so the side table's target is refreshed.
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
  if (status == 0) no_throw([&] { track_connect_done(mysql, ret && *ret, r, &args); });
  return status;
}

CONNLEAK_EXPORT int mysql_real_connect_cont(MYSQL** ret, MYSQL* mysql, int ready_status) {
  CONNLEAK_HOOK_PROLOGUE(mysql_real_connect_cont, if (ret)* ret = nullptr; return 0)
  int status = real(ret, mysql, ready_status);
  if (status == 0 && !r.self_call && mysql && should_track())
    no_throw([&] { track_connect_done(mysql, ret && *ret, r, nullptr); });
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
    HandleInfo info;
    bool in_progress =
        HandleTable::instance().get(key(mysql), &info) && info.phase == Phase::kConnecting;
    if (!in_progress) track_connect_start(mysql, r, args);
  });
  net_async_status status = real(mysql, host, user, passwd, db, port, unix_socket, clientflag);
  if (status != NET_ASYNC_NOT_READY)
    no_throw([&] { track_connect_done(mysql, status != NET_ASYNC_ERROR, r, &args); });
  return status;
}
