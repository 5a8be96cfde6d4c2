#include "collector/policy/redact.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <vector>

#include "collector/util/text_util.h"

namespace connleak {
namespace {

// The only fields a target can show. A password can reach the report only through one of
// these values, and every one of them goes through scrub_value on the way out.
constexpr std::array<std::string_view, 8> kTargetKeys = {
    "host", "hostaddr", "port", "dbname", "user", "service", "application_name", "sslmode"};

// ASCII only: libpq's isspace() runs in the C locale unless the host changed it, and our
// parse must not drift with the host's locale.
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}
char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

bool istarts_with(std::string_view s, std::string_view prefix) {
  if (s.size() < prefix.size()) return false;
  for (std::size_t i = 0; i < prefix.size(); ++i) {
    if (to_lower(s[i]) != prefix[i]) return false;
  }
  return true;
}

bool iends_with(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && istarts_with(s.substr(s.size() - suffix.size()), suffix);
}

// C strings end at NUL, and so does everything libpq would have read.
std::string_view up_to_nul(std::string_view s) {
  return s.substr(0, s.find('\0'));
}

bool is_secret_key(std::string_view key) {
  for (std::string_view suffix : {"password", "passwd", "pwd", "pass", "passphrase"}) {
    if (iends_with(key, suffix)) return true;
  }
  return false;
}

// libpq accepts both prefixes case-sensitively; matching any case costs nothing and means an
// upper-case URI is still parsed as one instead of being misread as keywords.
std::size_t uri_prefix_length(std::string_view s) {
  if (istarts_with(s, "postgresql://")) return 13;
  if (istarts_with(s, "postgres://")) return 11;
  return 0;
}

// libpq's recognized_connection_string(): what expand_dbname will expand.
bool is_connection_string(std::string_view s) {
  return uri_prefix_length(s) != 0 || s.find('=') != std::string_view::npos;
}

std::string quote_value(std::string_view v) {
  bool needs_quotes = v.empty();
  for (char c : v) {
    if (is_space(c) || c == '\'' || c == '\\') needs_quotes = true;
  }
  if (!needs_quotes) return std::string(v);
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
  return out;
}

struct Fields {
  std::array<std::string, kTargetKeys.size()> value;
  std::array<bool, kTargetKeys.size()> set{};

  void store(std::string_view key, std::string_view v) {
    for (std::size_t i = 0; i < kTargetKeys.size(); ++i) {
      if (key == kTargetKeys[i]) {
        value[i].assign(v);
        set[i] = true;
        return;
      }
    }
  }
  // libpq copies every field the expanded dbname set, empty ones included.
  void override_with(const Fields& other) {
    for (std::size_t i = 0; i < kTargetKeys.size(); ++i) {
      if (other.set[i]) {
        value[i] = other.value[i];
        set[i] = true;
      }
    }
  }
  std::string render() const {
    std::string out;
    for (std::size_t i = 0; i < kTargetKeys.size(); ++i) {
      if (!set[i]) continue;
      if (!out.empty()) out += ' ';
      out += kTargetKeys[i];
      out += '=';
      out += quote_value(scrub_value(value[i]));
    }
    return out;
  }
};

// Mirrors libpq's conninfo_parse() step by step (blanks around '=', backslash escapes inside
// and outside quotes, the next key may start right after a closing quote) so that our idea of where
// the password value ends is exactly libpq's. Unknown keys are dropped rather than rejected.
bool parse_keywords(std::string_view s, Fields* out) {
  const std::size_t n = s.size();
  std::size_t i = 0;
  while (i < n) {
    if (is_space(s[i])) {
      ++i;
      continue;
    }
    const std::size_t key_start = i;
    while (i < n && s[i] != '=' && !is_space(s[i])) ++i;
    const std::string_view key = s.substr(key_start, i - key_start);
    while (i < n && is_space(s[i])) ++i;
    if (i >= n || s[i] != '=') return false;
    ++i;
    while (i < n && is_space(s[i])) ++i;

    std::string value;
    if (i < n && s[i] == '\'') {
      ++i;
      for (;;) {
        if (i >= n) return false;  // unterminated quoted string
        if (s[i] == '\\') {
          ++i;
          if (i < n) value += s[i++];
          continue;
        }
        if (s[i] == '\'') {
          ++i;
          break;
        }
        value += s[i++];
      }
    } else {
      while (i < n) {
        if (is_space(s[i])) {
          ++i;
          break;
        }
        if (s[i] == '\\') {
          ++i;
          if (i < n) value += s[i++];
        } else {
          value += s[i++];
        }
      }
    }
    out->store(key, value);
  }
  return true;
}

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// libpq's conninfo_uri_decode(): a malformed escape or %00 fails the whole conninfo.
bool percent_decode(std::string_view in, std::string* out) {
  out->clear();
  for (std::size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      *out += in[i];
      continue;
    }
    const int hi = i + 1 < in.size() ? hex_digit(in[i + 1]) : -1;
    const int lo = i + 2 < in.size() ? hex_digit(in[i + 2]) : -1;
    if (hi < 0 || lo < 0) return false;
    const int c = hi * 16 + lo;
    if (c == 0) return false;
    *out += static_cast<char>(c);
    i += 2;
  }
  return true;
}

bool store_decoded(Fields* out, std::string_view key, std::string_view raw) {
  std::string decoded;
  if (!percent_decode(raw, &decoded)) return false;
  out->store(key, decoded);
  return true;
}

// libpq's conninfo_uri_parse_params(): '&'-separated key=value, exactly one '=' each.
bool parse_uri_query(std::string_view q, Fields* out) {
  std::size_t i = 0;
  while (i < q.size()) {
    std::size_t end = q.find('&', i);
    if (end == std::string_view::npos) end = q.size();
    const std::string_view param = q.substr(i, end - i);
    const std::size_t eq = param.find('=');
    if (eq == std::string_view::npos || param.find('=', eq + 1) != std::string_view::npos) {
      return false;
    }
    std::string key, value;
    if (!percent_decode(param.substr(0, eq), &key) ||
        !percent_decode(param.substr(eq + 1), &value)) {
      return false;
    }
    if (key == "ssl" && value == "true") {
      out->store("sslmode", "require");
    } else {
      out->store(key, value);
    }
    i = end + 1;
  }
  return true;
}

// rest: the URI after "postgresql://". Follows libpq's conninfo_uri_parse_options() except
// where the userinfo ends. libpq ends it at the first '@' before the first '/', which, for a
// password with a raw '@' or '/', sends the rest of the password into host or dbname. Here the
// authority ends at the first '/' or '?', the userinfo at the last '@' inside it, and any raw
// '@' after the authority makes the URI unparsable: there is no telling whether it belongs to
// the password.
bool parse_uri(std::string_view rest, Fields* out) {
  std::size_t authority_end = rest.find_first_of("/?");
  if (authority_end == std::string_view::npos) authority_end = rest.size();
  const std::string_view authority = rest.substr(0, authority_end);
  const std::string_view tail = rest.substr(authority_end);
  if (tail.find('@') != std::string_view::npos) return false;

  std::string_view hostspec = authority;
  const std::size_t at = authority.rfind('@');
  if (at != std::string_view::npos) {
    const std::string_view userinfo = authority.substr(0, at);
    hostspec = authority.substr(at + 1);
    // The password (after the first ':') is never decoded or copied anywhere.
    const std::string_view user = userinfo.substr(0, userinfo.find(':'));
    if (!user.empty() && !store_decoded(out, "user", user)) return false;
  }

  std::string hosts, ports;
  std::size_t p = 0;
  for (;;) {
    if (p < hostspec.size() && hostspec[p] == '[') {
      const std::size_t close = hostspec.find(']', p + 1);
      if (close == std::string_view::npos || close == p + 1) return false;
      hosts += hostspec.substr(p + 1, close - p - 1);
      p = close + 1;
      if (p < hostspec.size() && hostspec[p] != ':' && hostspec[p] != ',') return false;
    } else {
      std::size_t e = hostspec.find_first_of(":,", p);
      if (e == std::string_view::npos) e = hostspec.size();
      hosts += hostspec.substr(p, e - p);
      p = e;
    }
    if (p < hostspec.size() && hostspec[p] == ':') {
      std::size_t e = hostspec.find(',', p + 1);
      if (e == std::string_view::npos) e = hostspec.size();
      ports += hostspec.substr(p + 1, e - p - 1);
      p = e;
    }
    if (p >= hostspec.size()) break;
    ++p;  // past ','
    hosts += ',';
    ports += ',';
  }
  if (!hosts.empty() && !store_decoded(out, "host", hosts)) return false;
  if (!ports.empty() && !store_decoded(out, "port", ports)) return false;

  if (tail.empty()) return true;
  const std::size_t q = tail.find('?');
  if (tail.front() == '/') {
    const std::string_view dbname = tail.substr(1, q == std::string_view::npos ? q : q - 1);
    if (!dbname.empty() && !store_decoded(out, "dbname", dbname)) return false;
  }
  return q == std::string_view::npos || parse_uri_query(tail.substr(q + 1), out);
}

bool parse_conninfo(std::string_view s, Fields* out) {
  s = trim(up_to_nul(s));
  const std::size_t prefix = uri_prefix_length(s);
  return prefix != 0 ? parse_uri(s.substr(prefix), out) : parse_keywords(s, out);
}

// Spans of a value to delete, as [from, to) offsets into the original text. Both rules below
// mark spans on the original and the union is deleted at once: deleting one rule's span first
// could remove the very '@' or key that tells the other rule where a secret ends (say a URI
// whose password contains "pwd=", or a "password=p@ss" after a URI).
using Spans = std::vector<std::pair<std::size_t, std::size_t>>;

// The text of every secret value found, so that a copy of it elsewhere in the
// same value (inside an earlier, overridden host=..., a nested conninfo, a
// comment) is erased too: the secret's field is not the only place it can sit.
using SecretTexts = std::vector<std::string>;

// A shorter text proves nothing: it matches "host", "port" and other fixed
// words, and erasing it would cut every field apart.
constexpr std::size_t kMinEchoedSecret = 4;

void note_secret(std::string_view raw, SecretTexts* secrets) {
  if (raw.size() >= 2 && (raw.front() == '\'' || raw.front() == '"') && raw.back() == raw.front())
    raw = raw.substr(1, raw.size() - 2);
  if (raw.size() >= kMinEchoedSecret) secrets->emplace_back(raw);
  // The unescaped and the percent-decoded spellings, as a parser would read them.
  std::string plain;
  for (std::size_t i = 0; i < raw.size(); ++i) {
    if (raw[i] == '\\' && i + 1 < raw.size()) ++i;
    plain += raw[i];
  }
  if (plain.size() >= kMinEchoedSecret && plain != raw) secrets->push_back(plain);
  std::string decoded;
  if (percent_decode(raw, &decoded) && decoded.size() >= kMinEchoedSecret && decoded != raw)
    secrets->push_back(std::move(decoded));
}

// Every other occurrence of a secret's text, wherever it sits.
void mark_secret_echoes(std::string_view s, const SecretTexts& secrets, Spans* spans) {
  for (const std::string& secret : secrets)
    for (std::size_t at = s.find(secret); at != std::string_view::npos; at = s.find(secret, at + 1))
      spans->emplace_back(at, at + secret.size());
}

// After each "scheme://", from the first ':' to the last '@' in the whole value: the password
// if the userinfo is well-formed, and when it is not (a raw '/', '?' or '@' in the password)
// the last '@' is still past its end, at the cost of deleting more than needed.
void mark_uri_passwords(std::string_view s, Spans* spans, SecretTexts* secrets) {
  const std::size_t last_at = s.rfind('@');
  if (last_at == std::string_view::npos) return;
  for (std::size_t pos = s.find("://"); pos != std::string_view::npos && pos + 3 <= last_at;
       pos = s.find("://", pos + 3)) {
    const std::size_t colon = s.find(':', pos + 3);
    if (colon < last_at) {
      spans->emplace_back(colon, last_at);
      note_secret(s.substr(colon + 1, last_at - colon - 1), secrets);
    }
  }
}

bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         c == '-' || c == '.';
}
bool is_separator(char c) {
  return is_space(c) || c == '&' || c == ';';
}

// End of the value starting at v. The terminator depends on what the key followed: '&' in a
// URI query, ';' in an ODBC-style string, otherwise a blank as in libpq. The fragment may sit
// inside another quoted value (a conninfo in application_name, in a conninfo) where every
// escape is doubled, and its nesting depth is unknown. So a terminator counts only when no
// backslash precedes it (an escaped blank is preceded by one at any depth), and a value that
// starts with a backslash (an escaped opening quote) runs to the end. Both can only delete more.
std::size_t value_end(std::string_view s, std::size_t v, char context) {
  const std::size_t n = s.size();
  if (v >= n) return n;
  if (s[v] == '\\') return n;
  if (s[v] == '\'' || s[v] == '"') {
    const char quote = s[v];
    for (std::size_t j = v + 1; j < n; ++j) {
      if (s[j] == '\\') {
        ++j;
      } else if (s[j] == quote) {
        return j + 1;
      }
    }
    return n;
  }
  for (std::size_t j = v; j < n; ++j) {
    const char c = s[j];
    const bool terminator = context == '&' ? c == '&' : context == ';' ? c == ';' : is_space(c);
    if (terminator && s[j - 1] != '\\') return j;
  }
  return n;
}

// Each "key=value" whose key names a password, with the separators on one side so that no
// doubled blank, "&&" or dangling '?' is left behind.
void mark_password_fragments(std::string_view s, Spans* spans, SecretTexts* secrets) {
  std::size_t i = 0;
  while (i < s.size()) {
    const std::size_t eq = s.find('=', i);
    if (eq == std::string_view::npos) return;
    std::size_t key_end = eq;
    while (key_end > 0 && is_space(s[key_end - 1])) --key_end;
    std::size_t key_start = key_end;
    while (key_start > 0 && is_key_char(s[key_start - 1])) --key_start;
    if (key_start == key_end || !is_secret_key(s.substr(key_start, key_end - key_start))) {
      i = eq + 1;
      continue;
    }
    const char before = key_start > 0 ? s[key_start - 1] : ' ';
    const char context = (before == '?' || before == '&') ? '&' : before == ';' ? ';' : ' ';
    std::size_t v = eq + 1;
    while (v < s.size() && is_space(s[v])) ++v;  // libpq skips blanks after '='
    const std::size_t end = value_end(s, v, context);
    std::size_t from = key_start;
    std::size_t to = end;
    if (to < s.size() && is_separator(s[to])) {
      while (to < s.size() && is_separator(s[to])) ++to;
    } else {
      while (from > 0 && is_separator(s[from - 1])) --from;
      if (to == s.size() && from > 0 && s[from - 1] == '?') --from;
    }
    spans->emplace_back(from, to);
    note_secret(s.substr(v, end - v), secrets);
    i = std::max(end, eq + 1);
  }
}

// JSON- or YAML-flow-style secrets inside one value ({"password": "X"}, {'pwd':X}): the
// value after a quoted key naming a password and a ':'. Quoted values end at the matching
// unescaped quote, bare ones at ',', '}', ']' or a blank.
void mark_json_passwords(std::string_view s, Spans* spans, SecretTexts* secrets) {
  for (std::size_t q = s.find_first_of("\"'"); q != std::string_view::npos;
       q = s.find_first_of("\"'", q + 1)) {
    const char quote = s[q];
    const std::size_t close = s.find(quote, q + 1);
    if (close == std::string_view::npos) return;
    if (!is_secret_key(s.substr(q + 1, close - q - 1))) {
      q = close;
      continue;
    }
    std::size_t v = close + 1;
    while (v < s.size() && is_space(s[v])) ++v;
    if (v >= s.size() || s[v] != ':') {
      q = close;
      continue;
    }
    ++v;
    while (v < s.size() && is_space(s[v])) ++v;
    std::size_t end = v;
    if (v < s.size() && (s[v] == '"' || s[v] == '\'')) {
      end = value_end(s, v, ' ');
    } else {
      while (end < s.size() && s[end] != ',' && s[end] != '}' && s[end] != ']' && !is_space(s[end]))
        ++end;
    }
    if (end > v) {
      spans->emplace_back(v, end);
      note_secret(s.substr(v, end - v), secrets);
    }
    q = end > close ? end - 1 : close;
  }
}

std::string erase_spans(std::string_view s, Spans spans) {
  std::sort(spans.begin(), spans.end());
  std::string out;
  std::size_t kept_from = 0;
  for (const auto& [from, to] : spans) {
    if (from > kept_from) out.append(s.substr(kept_from, from - kept_from));
    kept_from = std::max(kept_from, to);
  }
  if (kept_from < s.size()) out.append(s.substr(kept_from));
  return out;
}

}  // namespace

std::string scrub_value(std::string_view value) noexcept {
  try {
    Spans spans;
    SecretTexts secrets;
    mark_uri_passwords(value, &spans, &secrets);
    mark_password_fragments(value, &spans, &secrets);
    mark_json_passwords(value, &spans, &secrets);
    mark_secret_echoes(value, secrets, &spans);
    return erase_spans(value, std::move(spans));
  } catch (...) {
    return {};
  }
}

std::string redact_conninfo(std::string_view conninfo) noexcept {
  try {
    Fields fields;
    if (!parse_conninfo(conninfo, &fields)) return std::string(kUnparsableConninfo);
    return fields.render();
  } catch (...) {
    return {};
  }
}

std::string redact_conninfo(const char* conninfo) noexcept {
  return conninfo == nullptr ? std::string() : redact_conninfo(std::string_view(conninfo));
}

std::string redact_params(const char* const* keywords, const char* const* values,
                          bool expand_dbname) noexcept {
  if (keywords == nullptr || values == nullptr) return {};
  try {
    // libpq's conninfo_array_parse(): find the first dbname with a non-NULL value (even an
    // empty one ends the search) and expand it if it looks like a conninfo or URI.
    Fields expanded;
    bool have_expanded = false;
    for (std::size_t i = 0; expand_dbname && keywords[i] != nullptr; ++i) {
      if (std::strcmp(keywords[i], "dbname") == 0 && values[i] != nullptr) {
        if (is_connection_string(values[i])) {
          if (!parse_conninfo(values[i], &expanded)) return std::string(kUnparsableConninfo);
          have_expanded = true;
        }
        break;
      }
    }

    Fields fields;
    for (std::size_t i = 0; keywords[i] != nullptr; ++i) {
      if (values[i] == nullptr || values[i][0] == '\0') continue;
      if (have_expanded && std::strcmp(keywords[i], "dbname") == 0) {
        fields.override_with(expanded);
        have_expanded = false;  // later dbname entries are plain names
        continue;
      }
      fields.store(keywords[i], values[i]);
    }
    return fields.render();
  } catch (...) {
    return {};
  }
}

bool names_a_secret(std::string_view key) noexcept {
  return is_secret_key(key);
}

bool uri_password_ambiguous(std::string_view conninfo) noexcept {
  const std::string_view s = trim(up_to_nul(conninfo));
  const std::size_t prefix = uri_prefix_length(s);
  if (prefix == 0) return false;
  const std::string_view rest = s.substr(prefix);
  const std::size_t first_at = rest.find('@');
  if (first_at == std::string_view::npos) return false;
  // An '@' after the first '/': libpq saw no userinfo, yet one was meant.
  if (rest.find('/') < first_at) return true;
  // More than one '@': libpq's password stops at the first, the rest goes to the host.
  return rest.find('@', first_at + 1) != std::string_view::npos;
}

bool params_password_ambiguous(const char* const* keywords, const char* const* values,
                               bool expand_dbname) noexcept {
  if (keywords == nullptr || values == nullptr || !expand_dbname) return false;
  for (std::size_t i = 0; keywords[i] != nullptr; ++i) {
    if (std::strcmp(keywords[i], "dbname") == 0 && values[i] != nullptr)
      return uri_password_ambiguous(values[i]);
  }
  return false;
}

namespace {
bool overlaps_secret(std::string_view value, std::string_view secret) {
  constexpr std::size_t kMin = 3;  // shorter pieces are everywhere ("db", "u")
  if (secret.size() >= kMin && value.find(secret) != std::string_view::npos) return true;
  return value.size() >= kMin && secret.find(value) != std::string_view::npos;
}
}  // namespace

std::string format_target(
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts) noexcept {
  return format_target_without({}, parts);
}

std::string format_target_without(
    std::string_view secret,
    std::initializer_list<std::pair<std::string_view, std::string_view>> parts) noexcept {
  try {
    std::string out;
    for (const auto& [key, raw] : parts) {
      if (key.empty() || raw.empty() || is_secret_key(key)) continue;
      if (!secret.empty() && overlaps_secret(raw, secret)) continue;
      const std::string value = scrub_value(raw);
      if (value.empty()) continue;
      if (!out.empty()) out += ' ';
      out += key;
      out += '=';
      out += quote_value(value);
    }
    return out;
  } catch (...) {
    return {};
  }
}

}  // namespace connleak
