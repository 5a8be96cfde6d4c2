// MySQL / MariaDB transaction tracking: after each command the server's status
// flag SERVER_STATUS_IN_TRANS (sent in every OK packet) says whether the
// connection is inside a transaction. MariaDB Connector/C exposes it through
// mariadb_get_infov; MySQL 8's libmysqlclient has no such accessor (only the
// MYSQL struct's layout), so there the state stays unknown and txn_threshold
// does not apply.
#include <mysql.h>

#include "collector/core/live_state.h"
#include "collector/util/logger.h"
#include "shim/hooks/real_symbol.h"
#include "shim/runtime/export.h"
#include "shim/runtime/guard.h"
#include "shim/runtime/runtime.h"
#include "shim/track/activity_track.h"
#include "shim/track/capture.h"
#include "shim/track/live_cache.h"
#include "shim/track/tracking.h"

using namespace connleak;
using namespace connleak::shim;

namespace {

void after_command(MYSQL* m, const Resolution& r) {
  if (!m) return;
  auto get_info = reinterpret_cast<decltype(&::mariadb_get_infov)>(
      resolve_in(r.module, kSym_mariadb_get_infov));
  unsigned int status = 0;
  if (!get_info || get_info(m, MARIADB_CONNECTION_SERVER_STATUS, &status) != 0) return;
  note_command_state(
      Library::kMysql, m,
      (status & SERVER_STATUS_IN_TRANS) ? TxnState::kInTransaction : TxnState::kIdle);
}

// The statement's connection. MYSQL_STMT is a public struct in MariaDB's
// headers; its layout is only trusted for MariaDB's own library.
MYSQL* connection_of(MYSQL_STMT* stmt, const Resolution& r) {
  return stmt && std::string_view(r.module).find("mariadb") != std::string_view::npos ? stmt->mysql
                                                                                      : nullptr;
}

}  // namespace

// `before` runs before the real call when tracking (the statement sent, option
// statements); `done` says, from `result`, whether the statement's result has
// been read by the time the call returns (false: still running, non-blocking
// forms). A call libmariadb makes to itself (mysql_query -> mysql_real_query)
// is a self call: counted once, by the outer hook.
#define CONNLEAK_MYSQL_COMMAND(name, ret, fail, params, args, connection, before, done) \
  CONNLEAK_EXPORT ret name params {                                                     \
    Resolution r = resolve(kSym_##name, __builtin_return_address(0));                   \
    auto real = reinterpret_cast<decltype(&::name)>(r.real);                            \
    if (!real) {                                                                        \
      report_missing(#name);                                                            \
      return fail;                                                                      \
    }                                                                                   \
    const bool track = !r.self_call && should_track();                                  \
    if (track) before;                                                                  \
    ret result = real args;                                                             \
    if (track) {                                                                        \
      if (done) activity_result(connection, false);                                     \
      after_command(connection, r);                                                     \
    }                                                                                   \
    return result;                                                                      \
  }

namespace {
constexpr std::size_t kNul = static_cast<std::size_t>(-1);
constexpr auto kMy = activity::Dialect::kMysql;
}  // namespace

CONNLEAK_MYSQL_COMMAND(mysql_real_query, int, 1, (MYSQL * m, const char* q, unsigned long length),
                       (m, q, length), m, activity_sent(m, q, length, kMy), true)
CONNLEAK_MYSQL_COMMAND(mysql_query, int, 1, (MYSQL * m, const char* q), (m, q), m,
                       activity_sent(m, q, kNul, kMy), true)
CONNLEAK_MYSQL_COMMAND(mysql_send_query, int, 1, (MYSQL * m, const char* q, unsigned long length),
                       (m, q, length), m, activity_sent(m, q, length, kMy), result != 0)
CONNLEAK_MYSQL_COMMAND(mysql_read_query_result, my_bool, 1, (MYSQL * m), (m), m, (void)0, true)
CONNLEAK_MYSQL_COMMAND(mysql_commit, my_bool, 1, (MYSQL * m), (m), m, (void)0, true)
CONNLEAK_MYSQL_COMMAND(mysql_rollback, my_bool, 1, (MYSQL * m), (m), m, (void)0, true)
CONNLEAK_MYSQL_COMMAND(mysql_autocommit, my_bool, 1, (MYSQL * m, my_bool mode), (m, mode), m,
                       (void)0, true)
// A statement handle is keyed by its address (MySQL 8's struct layout is not
// trusted, so its connection may be unknown: then the key has no owner).
CONNLEAK_MYSQL_COMMAND(mysql_stmt_prepare, int, 1,
                       (MYSQL_STMT * stmt, const char* q, unsigned long length), (stmt, q, length),
                       connection_of(stmt, r),
                       activity_prepare(connection_of(stmt, r), &stmt, sizeof stmt, q, length, kMy),
                       true)
CONNLEAK_MYSQL_COMMAND(mysql_stmt_execute, int, 1, (MYSQL_STMT * stmt), (stmt),
                       connection_of(stmt, r),
                       activity_execute(connection_of(stmt, r), &stmt, sizeof stmt), true)
// Non-blocking forms (MariaDB): the result is read when a call returns 0.
CONNLEAK_MYSQL_COMMAND(mysql_real_query_start, int, 1,
                       (int* ret, MYSQL* m, const char* q, unsigned long length),
                       (ret, m, q, length), m, activity_sent(m, q, length, kMy), result == 0)
CONNLEAK_MYSQL_COMMAND(mysql_real_query_cont, int, 1, (int* ret, MYSQL* m, int status),
                       (ret, m, status), m, (void)0, result == 0)
CONNLEAK_MYSQL_COMMAND(mysql_stmt_execute_start, int, 1, (int* ret, MYSQL_STMT* stmt), (ret, stmt),
                       connection_of(stmt, r),
                       activity_execute(connection_of(stmt, r), &stmt, sizeof stmt), result == 0)
