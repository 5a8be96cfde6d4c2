#pragma once
// SQL text -> the form a report may show: every literal replaced by `?` (as
// pg_stat_statements and Performance Schema digests do), comments dropped,
// whitespace collapsed, at most kMaxNormalizedChars code points.
//
// Why this exists: the statement a connection last ran is the best hint of
// what it was doing, but raw SQL carries passwords (ALTER ROLE ... PASSWORD
// '...', IDENTIFIED BY '...', pgp_sym_encrypt(x, 'key')) and user data. Only
// this function's output ever leaves the process.
//
// Fail closed: text that cannot be tokenized (an unterminated quote or
// comment) becomes its first keyword only ("UPDATE …"); a quote whose end
// depends on a server setting we cannot see (standard_conforming_strings,
// NO_BACKSLASH_ESCAPES) is read both ways, and if the two readings disagree
// the keyword form is used too.
#include <cstddef>
#include <string>
#include <string_view>

namespace connleak::activity {

enum class Dialect : unsigned char { kPostgres, kMysql };

inline constexpr std::size_t kMaxNormalizedChars = 200;

// `cut`: `sql` is only the first bytes of a longer statement (a bounded copy):
// a literal, comment or code point open at the end is expected, replaced or
// dropped, and the result ends with "…".
std::string normalize_sql(std::string_view sql, Dialect dialect, bool cut = false);

// The fail-closed form: the first keyword, upper-cased, then " …" ("…" alone
// when the text does not start with a word).
std::string first_keyword_only(std::string_view sql);

}  // namespace connleak::activity
