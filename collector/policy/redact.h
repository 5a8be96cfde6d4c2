#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

// Builds the report's `target` field. The contract says it never contains a password in any
// spelling, so targets are assembled from a whitelist of fields (anything else, including every
// password key, is dropped by construction) and each kept value is scrubbed again in case it
// carries a secret of its own, such as a dbname that is itself a URI with credentials.
// None of these functions throws; on allocation failure they return "".
namespace connleak {

// Returned instead of echoing input that cannot be parsed.
inline constexpr std::string_view kUnparsableConninfo = "<unparsable conninfo>";

// libpq conninfo string, keyword form ("host=h port=5 password='x y' dbname=d") or URI form
// ("postgresql://user:secret@h1:5432,h2/db?sslmode=require", also "postgres://"). Returns
// keyword form with only these keys, in this order:
//   host hostaddr port dbname user service application_name sslmode
// Values are quoted libpq-style ('...' with \' and \\) when they are empty or contain
// whitespace, a quote or a backslash. Keyword parsing follows libpq exactly (case-sensitive
// keys, later duplicates win, unknown keys dropped instead of rejected). URIs are
// percent-decoded; several hosts join with ',' as libpq does (host=h1,h2 port=5432,); query
// parameters are keywords (ssl=true means sslmode=require). Where libpq's URI grammar is
// ambiguous about where a password ends (a raw '@' after the host part, as in
// "postgresql://u:pa/ss@h" or "postgresql://u:pw@h/a@b") the result is kUnparsableConninfo
// rather than a guess. Empty or all-blank input returns "".
std::string redact_conninfo(std::string_view conninfo) noexcept;
// Same, for a pointer straight out of a hooked call: NULL returns "".
std::string redact_conninfo(const char* conninfo) noexcept;

// PQconnectdbParams-style NULL-terminated keyword/value arrays, with libpq's rules: a NULL or
// empty value is skipped; later keywords override earlier ones. With expand_dbname, the first
// dbname whose value is not NULL is expanded if it is a conninfo or URI: its fields override
// the keywords before it and are overridden by the non-empty ones after it; later dbname
// entries are plain names. An unparsable expanded dbname returns kUnparsableConninfo (libpq
// fails that connection too). NULL arrays return "".
std::string redact_params(const char* const* keywords, const char* const* values,
                          bool expand_dbname) noexcept;

// A single value read back from a live handle (PQhost, PQdb, PQuser...), returned as is except:
// - after "scheme://", text from the first ':' up to the last '@' is removed, so
//   "postgresql://u:secret@h/db" becomes "postgresql://u@h/db". Taking the last '@' errs on the
//   side of removing too much when an '@' also appears later in the value;
// - "key=value" where key ends in password, passwd, pwd, pass or passphrase (any case,
//   spaces around '=' allowed, value quoted or not) is removed with its separator, so
//   "host=h password='a b'" becomes "host=h" and "?sslmode=x&password=y" becomes "?sslmode=x";
// - in JSON-style text, the value after a quoted key naming a password and ':' is removed, so
//   '{"password": "x", "user": "u"}' becomes '{"password": , "user": "u"}'.
std::string scrub_value(std::string_view value) noexcept;

// True when `key` names a password: it ends in password, passwd, pwd, pass or passphrase (any
// case). Used for command-line flags too (--pgpassword, --db-pass).
bool names_a_secret(std::string_view key) noexcept;

// Builds a target from already-known parts ({"host", h}, {"port", p}, ...), in the order given.
// Parts with an empty value (before or after scrub_value) and parts whose key names a password
// are skipped; values are scrubbed and quoted as above.
std::string format_target(
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts) noexcept;

// True when `conninfo` is a URI whose password libpq may split differently from what its
// writer meant: libpq ends the userinfo at the first '@' before the first '/', so in
// "postgresql://u:sec@ret@host/db" it takes "sec" as the password and "ret@host" as the host,
// and in "postgresql://u:pa/ss@host/db" it sees no userinfo at all (host "u", port "pa",
// dbname "ss@host/db"). The values libpq then reports (PQhost, PQport, PQdb) carry pieces of
// the password, so a target must not be read back from such a handle.
bool uri_password_ambiguous(std::string_view conninfo) noexcept;
// Same for PQconnectdbParams-style arrays: the dbname that expand_dbname would expand.
bool params_password_ambiguous(const char* const* keywords, const char* const* values,
                               bool expand_dbname) noexcept;

// format_target, leaving out any part whose value contains `secret` (3 bytes or more) or is a
// piece of it (3 bytes or more): a password given separately (PQpass, MySQL's passwd argument)
// never shows up in a field that happens to hold it.
std::string format_target_without(
    std::string_view secret,
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts) noexcept;

}  // namespace connleak
