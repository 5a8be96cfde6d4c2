// MySQL / MariaDB transaction tracking: after each command the server's status
// flag SERVER_STATUS_IN_TRANS (sent in every OK packet) says whether the
// connection is inside a transaction. MariaDB Connector/C exposes it through
// mariadb_get_infov; MySQL 8's libmysqlclient has no such accessor (only the
// MYSQL struct's layout), so there the state stays unknown and txn_threshold
// does not apply.
#include <mysql.h>

#include "collector/live_state.h"
#include "collector/logger.h"
#include "shim/capture.h"
#include "shim/export.h"
#include "shim/guard.h"
#include "shim/live_cache.h"
#include "shim/real_symbol.h"
#include "shim/runtime.h"
#include "shim/tracking.h"

using namespace connleak;
using namespace connleak::shim;

namespace {

void after_command(MYSQL* m, const Resolution& r) {
  if (!m) return;
  auto get_info = reinterpret_cast<decltype(&::mariadb_get_infov)>(resolve_in(r.module, kSym_mariadb_get_infov));
  unsigned int status = 0;
  if (!get_info || get_info(m, MARIADB_CONNECTION_SERVER_STATUS, &status) != 0) return;
  note_command_state(Library::kMysql, m,
                     (status & SERVER_STATUS_IN_TRANS) ? TxnState::kInTransaction : TxnState::kIdle);
}

// The statement's connection. MYSQL_STMT is a public struct in MariaDB's
// headers; its layout is only trusted for MariaDB's own library.
MYSQL* connection_of(MYSQL_STMT* stmt, const Resolution& r) {
  return stmt && std::string_view(r.module).find("mariadb") != std::string_view::npos ? stmt->mysql : nullptr;
}

}  // namespace

#define CONNLEAK_MYSQL_COMMAND(name, ret, fail, params, args, connection)          \
  CONNLEAK_EXPORT ret name params {                                                \
    Resolution r = resolve(kSym_##name, __builtin_return_address(0));              \
    auto real = reinterpret_cast<decltype(&::name)>(r.real);                        \
    if (!real) {                                                                    \
      report_missing(#name);                                                        \
      return fail;                                                                  \
    }                                                                               \
    ret result = real args;                                                         \
    if (!r.self_call && should_track()) after_command(connection, r);              \
    return result;                                                                  \
  }

CONNLEAK_MYSQL_COMMAND(mysql_real_query, int, 1, (MYSQL* m, const char* q, unsigned long length),
                       (m, q, length), m)
CONNLEAK_MYSQL_COMMAND(mysql_query, int, 1, (MYSQL* m, const char* q), (m, q), m)
CONNLEAK_MYSQL_COMMAND(mysql_read_query_result, my_bool, 1, (MYSQL* m), (m), m)
CONNLEAK_MYSQL_COMMAND(mysql_commit, my_bool, 1, (MYSQL* m), (m), m)
CONNLEAK_MYSQL_COMMAND(mysql_rollback, my_bool, 1, (MYSQL* m), (m), m)
CONNLEAK_MYSQL_COMMAND(mysql_autocommit, my_bool, 1, (MYSQL* m, my_bool mode), (m, mode), m)
CONNLEAK_MYSQL_COMMAND(mysql_stmt_execute, int, 1, (MYSQL_STMT* stmt), (stmt), connection_of(stmt, r))
