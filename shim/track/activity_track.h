#pragma once
// What every client library's hooks record about statements (option
// statements): the hot-path half of collector/activity. Each call is a no-op
// when the option is off or the handle is not a tracked connection. Nothing
// here allocates except activity_prepare, which runs once per prepared
// statement (a server round trip) and normalizes the text then.
#include <cstddef>
#include <cstdint>

#include "collector/activity/normalize.h"

namespace connleak::shim {

// A statement with its text was sent. `n` = npos: NUL-terminated.
// `cut`: `sql` is only the first bytes of the statement (a socket's bounded copy).
void activity_sent(const void* handle, const char* sql, std::size_t n, activity::Dialect dialect,
                   bool cut = false);
// A statement is being prepared under `name` (a PostgreSQL statement name, a
// MySQL statement handle's address or server id): remembered, normalized,
// for its executions. `handle` may be null (then `owner` alone keys it).
void activity_prepare(const void* handle, const void* name, std::size_t name_len, const char* sql,
                      std::size_t n, activity::Dialect dialect, bool cut = false);
// A statement is being prepared whose name only the server's answer will
// give (MySQL's COM_STMT_PREPARE over a socket): normalized now, kept as the
// connection's pending prepare until activity_prepared_as names it.
void activity_prepare_pending(const void* handle, const char* sql, std::size_t n,
                              activity::Dialect dialect, bool cut = false);
// The server named the pending prepare `name` (COM_STMT_PREPARE_OK's id).
void activity_prepared_as(const void* handle, const void* name, std::size_t name_len);
// An execution of the prepared statement `name` was sent.
void activity_execute(const void* handle, const void* name, std::size_t name_len);
// After a call: is a statement still running on the connection?
void activity_result(const void* handle, bool busy);

}  // namespace connleak::shim
