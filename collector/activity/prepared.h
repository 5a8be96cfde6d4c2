#pragma once
// Prepared statement -> its normalized text, so an execution (PQexecPrepared,
// a PostgreSQL Bind, MySQL COM_STMT_EXECUTE) can say which statement ran.
// Written when a statement is prepared (normalized once, then interned: the
// prepare is a server round trip, the normalization is small next to it);
// read lock-free on the execute path. A fixed table: when full, old entries
// are overwritten and an execution of a forgotten statement shows the
// placeholder text instead.
#include <cstddef>
#include <cstdint>

namespace connleak::activity {

// Key of (connection record id or handle, statement name or id).
std::uint64_t prepared_key(std::uint64_t owner, const void* name, std::size_t name_len);
// `normalized` must stay valid forever (interned).
void prepared_put(std::uint64_t key, const char* normalized);
// Null when unknown.
const char* prepared_get(std::uint64_t key);

// What an execution of an unknown prepared statement shows.
inline constexpr const char* kUnknownPrepared = "EXECUTE (prepared statement)";

}  // namespace connleak::activity
