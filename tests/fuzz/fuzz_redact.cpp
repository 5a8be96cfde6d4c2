// Conninfo / URI redaction against libpq itself. The oracle: whatever libpq's
// PQconninfoParse() takes as a secret (an option it marks with dispchar '*',
// i.e. password and sslpassword) must not appear in what we print, for
//   redact_conninfo(s)                     (the target of PQconnectdb(s)),
//   scrub_value(s) for a keyword conninfo  (a value read back from a handle),
//   redact_params(k, v, expand)            (PQconnectdbParams).
// A secret shorter than 4 bytes proves nothing (it matches "host", "port" and
// every other fixed word), and a secret that libpq itself also puts in a field
// we show (host=abcd password=abcd) is visible by design. Those two are the
// only exceptions, each defined below exactly.
#include <libpq-fe.h>

#include <cstring>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "collector/policy/redact.h"
#include "tests/fuzz/fuzz_input.h"

using namespace connleak;

namespace {

constexpr std::size_t kMinSecret = 4;
// The fields a target shows, in redact.h's order.
const char* const kShown[] = {"host",    "hostaddr",         "port",   "dbname", "user",
                              "service", "application_name", "sslmode"};

const std::set<std::string>& secret_keywords() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> s;
    PQconninfoOption* opts = PQconndefaults();
    for (PQconninfoOption* o = opts; o && o->keyword; ++o)
      if (o->dispchar && std::strchr(o->dispchar, '*')) s.insert(o->keyword);
    PQconninfoFree(opts);
    if (!s.count("password")) s.insert("password");  // whatever this libpq says
    return s;
  }();
  return keys;
}
const std::set<std::string>& all_keywords() {
  static const std::set<std::string> keys = [] {
    std::set<std::string> s;
    PQconninfoOption* opts = PQconndefaults();
    for (PQconninfoOption* o = opts; o && o->keyword; ++o) s.insert(o->keyword);
    PQconninfoFree(opts);
    return s;
  }();
  return keys;
}

// libpq's view of a conninfo: keyword -> value, for the options it set.
struct Parsed {
  bool ok = false;
  std::map<std::string, std::string> values;
};
Parsed libpq_parse(const std::string& conninfo) {
  Parsed p;
  char* err = nullptr;
  PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err);
  PQfreemem(err);
  if (!opts) return p;
  p.ok = true;
  for (PQconninfoOption* o = opts; o->keyword; ++o)
    if (o->val) p.values[o->keyword] = o->val;
  PQconninfoFree(opts);
  return p;
}

std::vector<std::string> secrets_of(const Parsed& p) {
  std::vector<std::string> out;
  for (const auto& [key, value] : p.values)
    if (secret_keywords().count(key) && value.size() >= kMinSecret) out.push_back(value);
  return out;
}

bool is_alnum_text(const std::string& s) {
  for (unsigned char c : s)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))) return false;
  return true;
}

// libpq-style quoting, as redact.h promises for its output.
std::string quoted(const std::string& v) {
  bool needs = v.empty();
  for (char c : v)
    if (c == ' ' || (c >= '\t' && c <= '\r') || c == '\'' || c == '\\') needs = true;
  if (!needs) return v;
  std::string out = "'";
  for (char c : v) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  return out + "'";
}

// What libpq's own parse lets anyone see: its shown fields rendered the way a
// target is, with kUnparsableConninfo besides. A secret inside that is not ours to hide.
std::string visible_by_libpq(const Parsed& p) {
  std::string out(kUnparsableConninfo);
  for (const char* key : kShown) {
    auto it = p.values.find(key);
    if (it == p.values.end()) continue;
    out += ' ';
    out += key;
    out += '=';
    out += quoted(it->second);
    out += ' ';
    out += it->second;  // scrubbing may have turned a quoted value into a bare one
  }
  return out;
}

void check_redact_conninfo(const std::string& conninfo) {
  const std::string out = redact_conninfo(conninfo);
  // Our output is itself a keyword conninfo libpq accepts, without a secret.
  if (!out.empty() && out != kUnparsableConninfo) {
    const Parsed again = libpq_parse(out);
    FUZZ_CHECK(again.ok, out);
    for (const auto& key : secret_keywords()) FUZZ_CHECK(!again.values.count(key), out);
  }
  const Parsed p = libpq_parse(conninfo);
  if (!p.ok) return;
  const std::string visible = visible_by_libpq(p);
  for (const std::string& secret : secrets_of(p)) {
    if (out.find(secret) == std::string::npos) continue;
    FUZZ_CHECK(visible.find(secret) != std::string::npos, conninfo + "\n  => " + out);
  }
}

// scrub_value keeps every key but the secret ones, so only an alphanumeric
// secret has an exact answer: any run of letters and digits in the output lies
// inside one key name or one value (libpq's escapes only remove backslashes).
void check_scrub_value(const std::string& conninfo) {
  const std::string out = scrub_value(conninfo);
  const Parsed p = libpq_parse(conninfo);
  // URIs are percent-decoded by libpq, so raw and parsed text differ; the URI
  // case is covered by redact_conninfo above.
  if (!p.ok || conninfo.find("://") != std::string::npos) return;
  for (const std::string& secret : secrets_of(p)) {
    if (!is_alnum_text(secret) || out.find(secret) == std::string::npos) continue;
    bool elsewhere = false;
    for (const auto& [key, value] : p.values)
      if (!secret_keywords().count(key) && value.find(secret) != std::string::npos)
        elsewhere = true;
    for (const auto& key : all_keywords())
      if (key.find(secret) != std::string::npos) elsewhere = true;
    FUZZ_CHECK(elsewhere, conninfo + "\n  => " + out);
  }
}

// NUL-separated tokens: keyword, value, keyword, value...; the first byte picks
// expand_dbname and which values are NULL.
void check_redact_params(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return;
  const std::uint8_t mode = data[0];
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> tokens;
  for (std::size_t i = 0;;) {
    const std::size_t nul = text.find('\0', i);
    tokens.push_back(text.substr(i, nul == std::string::npos ? std::string::npos : nul - i));
    if (nul == std::string::npos) break;
    i = nul + 1;
  }
  std::vector<const char*> keywords, values;
  for (std::size_t i = 0; i + 1 < tokens.size() && keywords.size() < 32; i += 2) {
    keywords.push_back(tokens[i].c_str());
    // Bit k of mode: value k is NULL (libpq skips it).
    values.push_back(keywords.size() <= 7 && (mode >> keywords.size()) & 1 ? nullptr
                                                                           : tokens[i + 1].c_str());
  }
  keywords.push_back(nullptr);
  values.push_back(nullptr);
  const bool expand = mode & 1;
  const std::string out = redact_params(keywords.data(), values.data(), expand);

  std::vector<std::string> secrets;
  std::vector<std::string> shown_text = {std::string(kUnparsableConninfo)};
  bool expanded = false;
  for (std::size_t i = 0; keywords[i]; ++i) {
    shown_text.push_back(keywords[i]);
    if (!values[i]) continue;
    const std::string key = keywords[i], value = values[i];
    if (expand && !expanded && key == "dbname") {
      expanded = true;
      const Parsed p = libpq_parse(value);
      if (p.ok &&
          (value.find('=') != std::string::npos || value.find("://") != std::string::npos)) {
        for (const auto& s : secrets_of(p)) secrets.push_back(s);
        for (const auto& [k, v] : p.values)
          if (!secret_keywords().count(k)) shown_text.push_back(v);
        continue;
      }
    }
    if (secret_keywords().count(key)) {
      if (value.size() >= kMinSecret) secrets.push_back(value);
    } else {
      shown_text.push_back(value);
    }
  }
  for (const std::string& secret : secrets) {
    if (!is_alnum_text(secret) || out.find(secret) == std::string::npos) continue;
    bool elsewhere = false;
    for (const auto& t : shown_text)
      if (t.find(secret) != std::string::npos) elsewhere = true;
    FUZZ_CHECK(elsewhere, text + "\n  => " + out);
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  // libpq reads a C string: everything from the first NUL on is not part of it.
  const std::string whole(reinterpret_cast<const char*>(data), size);
  const std::string conninfo = whole.substr(0, whole.find('\0'));
  check_redact_conninfo(conninfo);
  check_scrub_value(conninfo);
  check_redact_params(data, size);
  // Never more than the whitelist, never an exception, whatever the bytes.
  FUZZ_CHECK(redact_conninfo(whole) == redact_conninfo(conninfo), whole);
  return 0;
}
