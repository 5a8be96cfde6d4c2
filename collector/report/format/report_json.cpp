#include "collector/report/format/report_json.h"

#include <cmath>
#include <cstdio>
#include <limits>
#include <map>
#include <stdexcept>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>

#include "collector/report/format/connection_fields.h"
#include "collector/report/format/json_fields.h"
#include "collector/report/report_findings.h"
#include "collector/util/text_util.h"

namespace connleak {

using nlohmann::json;

namespace {

// Report strings are the host's bytes (argv, paths, names): a byte that is not
// UTF-8 becomes U+FFFD instead of nlohmann's type_error.316, which would
// otherwise abort the host at exit.
std::string dump(const json& j, int indent = -1) {
  return j.dump(indent, ' ', false, json::error_handler_t::replace);
}

template <typename T>
json opt(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

json frame_json(const Frame& f, bool native) {
  json j;
  if (native) {
    j["address"] = f.address ? json(hex(*f.address)) : json(nullptr);
    j["module"] = opt(f.module);
  }
  j["function"] = opt(f.function);
  j["file"] = opt(f.file);
  j["line"] = opt(f.line);
  // Extension: which Python frames are the program's own (not the standard
  // library's or an installed package's); text and SARIF lead with those.
  if (!native) j["user"] = !is_library_frame(f);
  return j;
}

json frames_json(const std::vector<Frame>& frames, bool native) {
  json arr = json::array();
  for (const Frame& f : frames) arr.push_back(frame_json(f, native));
  return arr;
}

json stacks_json(const Stacks& s) {
  json j;
  j["native"] = frames_json(s.native, true);
  if (s.script) j[std::string(to_string(s.language))] = frames_json(*s.script, false);
  return j;
}

template <typename T>
std::optional<T> get_opt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

// Numbers come from a file anyone may have written, and nlohmann's get<T>()
// converts whatever number is there: 1e300 into an integer is undefined
// behaviour, -5 into a counter wraps to 18446744073709551611, a pid was read
// as int. So an integer field takes only a JSON integer in its type's range,
// and a seconds field only a finite number >= 0; anything else rejects the
// report with one line naming the field (found by tests/fuzz/fuzz_report_reader.cpp).
template <typename T>
T integer_value(const json& v, const char* key) {
  constexpr auto lo = std::numeric_limits<T>::min();
  constexpr auto hi = std::numeric_limits<T>::max();
  bool ok = false;
  T out{};
  // Parsed text holds non-negative integers as unsigned, a DOM built in memory as signed.
  if (v.is_number_unsigned() || (v.is_number_integer() && v.get<std::int64_t>() >= 0)) {
    const auto u = v.get<std::uint64_t>();
    ok = u <= static_cast<std::uint64_t>(hi);
    if (ok) out = static_cast<T>(u);
  } else if (v.is_number_integer()) {
    const auto i = v.get<std::int64_t>();
    if constexpr (std::is_signed_v<T>) ok = i >= static_cast<std::int64_t>(lo);
    if (ok) out = static_cast<T>(i);
  }
  if (!ok)
    throw std::invalid_argument(std::string("\"") + key + "\" is not an integer from " +
                                std::to_string(lo) + " to " + std::to_string(hi));
  return out;
}

template <typename T>
T integer(const json& j, const char* key, T def) {
  auto it = j.find(key);
  return it == j.end() ? def : integer_value<T>(*it, key);
}

template <typename T>
std::optional<T> opt_integer(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return integer_value<T>(*it, key);
}

double seconds(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (!it->is_number() || !std::isfinite(it->get<double>()) || it->get<double>() < 0)
    throw std::invalid_argument(std::string("\"") + key + "\" is not a number of seconds");
  return it->get<double>();
}

Frame frame_from(const json& j) {
  Frame f;
  if (auto addr = get_opt<std::string>(j, "address")) f.address = std::stoull(*addr, nullptr, 16);
  f.module = get_opt<std::string>(j, "module");
  f.function = get_opt<std::string>(j, "function");
  f.file = get_opt<std::string>(j, "file");
  f.line = opt_integer<int>(j, "line");
  return f;
}

std::vector<Frame> frames_from(const json& j) {
  std::vector<Frame> out;
  if (!j.is_array()) throw std::invalid_argument("stack is not an array");
  for (const json& f : j) out.push_back(frame_from(f));
  return out;
}

// Extension (shared stacks, see to_json_text): the top-level "stacks" table.
using SharedStacks = std::unordered_map<std::string, Stacks>;

Stacks inline_stacks_from(const json& j) {
  Stacks s;
  if (auto it = j.find("native"); it != j.end()) s.native = frames_from(*it);
  for (const auto& [language, name] : EnumNames<ScriptLanguage>::kTable) {
    auto it = j.find(name);
    if (it == j.end() || it->is_null()) continue;
    s.script = frames_from(*it);
    s.language = language;
    break;
  }
  return s;
}

// A stack written in place, or {"stack": N} naming an entry of "stacks".
Stacks stacks_from(const json& j, const SharedStacks* shared = nullptr) {
  auto ref = j.find("stack");
  if (ref == j.end() || j.contains("native")) return inline_stacks_from(j);
  const std::string key = std::to_string(integer_value<std::uint64_t>(*ref, "stack"));
  auto it = shared ? shared->find(key) : SharedStacks::const_iterator{};
  if (!shared || it == shared->end())
    throw std::invalid_argument("\"stack\": " + key + " names no entry of \"stacks\"");
  return it->second;
}

SharedStacks shared_stacks_from(const json& doc) {
  SharedStacks out;
  auto it = doc.find("stacks");
  if (it == doc.end()) return out;
  if (!it->is_object()) throw std::invalid_argument("\"stacks\" is not an object");
  for (const auto& [key, value] : it->items()) out.emplace(key, inline_stacks_from(value));
  return out;
}

json pools_json(const std::vector<PoolInfo>& pools) {
  json arr = json::array();
  for (const PoolInfo& p : pools) {
    json pj = {{"id", p.id},
               {"kind", p.kind},
               {"name", p.name},
               {"target", p.target},
               {"max_size", p.max_size},
               {"connections", p.connections},
               {"checked_out", p.checked_out}};
    if (p.pid) pj["pid"] = *p.pid;
    arr.push_back(std::move(pj));
  }
  return arr;
}

// Extension (test attribution): {"test": ..., "fixture": ..., "scope": ...}.
json context_json(const ContextInfo& c) {
  json j = {{"test", c.test}};
  if (c.fixture) j["fixture"] = *c.fixture;
  if (c.scope) j["scope"] = *c.scope;
  return j;
}

std::optional<ContextInfo> context_from(const json& parent) {
  auto it = parent.find("context");
  if (it == parent.end() || !it->is_object()) return std::nullopt;
  ContextInfo c;
  c.test = it->value("test", "");
  c.fixture = get_opt<std::string>(*it, "fixture");
  c.scope = get_opt<std::string>(*it, "scope");
  return c;
}

json checkouts_json(const std::vector<Checkout>& checkouts) {
  json arr = json::array();
  for (const Checkout& c : checkouts) {
    json cj;
    cj["id"] = c.id;
    cj["pool"] = c.pool;
    cj["connection"] = opt(c.connection);
    cj["status"] = c.status;
    cj["checked_out_at"] = c.checked_out_at;
    cj["returned_at"] = opt(c.returned_at);
    cj["held_seconds"] = c.held_seconds;
    cj["thread"] = c.thread;
    cj["task"] = opt(c.task);
    cj["in_transaction"] = opt(c.in_transaction);
    json alerts = json::array();
    for (const AlertInfo& a : c.alerts)
      alerts.push_back({{"kind", a.kind}, {"after_seconds", a.after_seconds}});
    cj["alerts"] = std::move(alerts);
    cj["acquired"] = stacks_json(c.acquired);
    if (c.holder_now) {
      json h = json::object();
      if (c.holder_now->script)
        h[std::string(to_string(c.holder_now->language))] =
            frames_json(*c.holder_now->script, false);
      cj["holder_now"] = std::move(h);
    }
    if (c.holder_note) cj["holder_note"] = *c.holder_note;
    if (c.pid) cj["pid"] = *c.pid;
    if (c.context) cj["context"] = context_json(*c.context);
    arr.push_back(std::move(cj));
  }
  return arr;
}

void read_checkouts(const json& j, Report& r) {
  for (const json& pj : j.value("pools", json::array())) {
    PoolInfo p;
    p.id = pj.value("id", 0ULL);
    p.kind = pj.value("kind", "");
    p.name = pj.value("name", "");
    p.target = pj.value("target", "");
    p.max_size = pj.value("max_size", -1LL);
    p.connections = pj.value("connections", 0ULL);
    p.checked_out = pj.value("checked_out", 0ULL);
    p.pid = get_opt<std::int64_t>(pj, "pid");
    r.pools.push_back(std::move(p));
  }
  for (const json& cj : j.value("checkouts", json::array())) {
    Checkout c;
    c.id = cj.value("id", 0ULL);
    c.pool = cj.value("pool", 0ULL);
    c.connection = get_opt<std::uint64_t>(cj, "connection");
    c.status = cj.value("status", "");
    c.checked_out_at = cj.value("checked_out_at", "");
    c.returned_at = get_opt<std::string>(cj, "returned_at");
    c.held_seconds = cj.value("held_seconds", 0.0);
    c.thread = cj.value("thread", 0LL);
    c.task = get_opt<std::string>(cj, "task");
    c.in_transaction = get_opt<bool>(cj, "in_transaction");
    for (const json& a : cj.value("alerts", json::array()))
      c.alerts.push_back({Named<AlertKind>(a.value("kind", "")), a.value("after_seconds", 0.0)});
    if (auto it = cj.find("acquired"); it != cj.end()) c.acquired = stacks_from(*it);
    if (auto it = cj.find("holder_now"); it != cj.end() && it->is_object())
      c.holder_now = stacks_from(*it);
    c.holder_note = get_opt<std::string>(cj, "holder_note");
    c.context = context_from(cj);
    r.checkouts.push_back(std::move(c));
  }
  if (auto it = j.find("snapshot"); it != j.end() && it->is_object()) {
    r.snapshot_pool = get_opt<std::uint64_t>(*it, "pool");
    r.waited_seconds = get_opt<double>(*it, "waited_seconds");
    r.refusal = get_opt<std::string>(*it, "refusal");
  }
}

json connection_json(const Connection& c);

}  // namespace

json to_json(const Report& r) {
  json j;
  j["tool"] = r.tool;
  j["version"] = r.version;
  j["pid"] = r.pid;
  j["ppid"] = r.ppid;
  j["argv"] = r.argv;
  j["trigger"] = r.trigger;
  j["generated_at"] = r.generated_at;
  const Summary& s = r.summary;
  j["summary"] = {{"opened", s.opened},
                  {"closed", s.closed},
                  {"open", s.open},
                  {"leaked", s.leaked},
                  {"flagged", s.flagged},
                  {"double_closes", s.double_closes},
                  {"unknown_closes", s.unknown_closes},
                  {"resets", s.resets},
                  {"inherited", s.inherited},
                  {"ignored", s.ignored},
                  {"complete", s.complete},
                  {"pooled", s.pooled},
                  {"checkouts",
                   {{"taken", s.checkouts.taken},
                    {"returned", s.checkouts.returned},
                    {"open", s.checkouts.open},
                    {"leaked", s.checkouts.leaked}}}};
  if (!r.notes.empty()) j["notes"] = r.notes;
  j["pools"] = pools_json(r.pools);
  j["checkouts"] = checkouts_json(r.checkouts);
  if (r.snapshot_pool || r.waited_seconds || r.refusal) {
    json snap = json::object();
    if (r.snapshot_pool) snap["pool"] = *r.snapshot_pool;
    if (r.waited_seconds) snap["waited_seconds"] = *r.waited_seconds;
    if (r.refusal) snap["refusal"] = *r.refusal;
    j["snapshot"] = std::move(snap);
  }
  json conns = json::array();
  for (const Connection& c : r.connections) conns.push_back(connection_json(c));
  j["connections"] = std::move(conns);
  if (!r.suppressions_used.empty()) {
    json used = json::array();
    for (const SuppressionUse& u : r.suppressions_used)
      used.push_back(
          {{"suppression", "leak:" + u.pattern}, {"origin", u.origin}, {"hits", u.hits}});
    j["suppressions"] = std::move(used);
  }
  return j;
}

namespace {

json alerts_json(const std::vector<AlertInfo>& alerts) {
  json arr = json::array();
  for (const AlertInfo& a : alerts)
    arr.push_back({{"kind", a.kind}, {"after_seconds", a.after_seconds}});
  return arr;
}

// Without `with_began`, the stacks where the transaction began are left out
// (to_json_text appends them).
json transaction_json(const TransactionInfo& txn, bool with_began) {
  json t = {{"state", txn.state}, {"seconds", txn.seconds}};
  if (txn.note) t["note"] = *txn.note;
  if (with_began && txn.began) t["began"] = stacks_json(*txn.began);
  return t;
}

// One connection's fields but its stacks (acquired, init_stack, closed_from,
// closed_again_from) and its transaction. `Json` is nlohmann::json (to_json)
// or JsonFields (to_json_text, straight to text): one list for both.
template <typename Json>
void put_connection_fields(Json& cj, const Connection& c) {
  put_connection_identity(cj, c);
  cj["age_seconds"] = c.age_seconds;
  cj["closed_at"] = opt(c.closed_at);
  cj["thread"] = c.thread;
  cj["resets"] = c.resets;
  cj["client_module"] = c.client_module;
  cj["alerts"] = alerts_json(c.alerts);
  if (c.closed_again_from || c.closed_again_at) cj["closed_again_at"] = opt(c.closed_again_at);
  cj["server_id"] = opt(c.server_id);
  if (c.protocol) cj["protocol"] = *c.protocol;
  if (c.closed_by) cj["closed_by"] = *c.closed_by;
  if (c.statements) {
    cj["statements"] = *c.statements;
    cj["last_statement"] = opt(c.last_statement);
    cj["last_used_at"] = opt(c.last_used_at);
    cj["idle_seconds"] = opt(c.idle_seconds);
    if (c.busy) cj["busy"] = *c.busy;
  }
  if (c.pid) cj["pid"] = *c.pid;
  if (c.pool) cj["pool"] = *c.pool;
  if (c.context) cj["context"] = context_json(*c.context);
}

json connection_json(const Connection& c) {
  json cj;
  put_connection_fields(cj, c);
  cj["acquired"] = stacks_json(c.acquired);
  if (c.init_stack) cj["init_stack"] = stacks_json(*c.init_stack);
  if (c.closed_from) cj["closed_from"] = stacks_json(*c.closed_from);
  if (c.closed_again_from) cj["closed_again_from"] = stacks_json(*c.closed_again_from);
  if (c.transaction) cj["transaction"] = transaction_json(*c.transaction, true);
  return cj;
}

// Past this many connections to_json_text shares repeated stacks: up to it,
// at ~5 KB per connection with a 20-frame stack, a report stays within ~5 MB
// in the contract's own form, which is what every small report (and test) reads.
constexpr std::size_t kInlineStacksUpTo = 1000;

// A key equal for equal stacks: addresses for native frames, the interned
// strings' text for the language's own (Python...) ones. Built for every
// stack of every connection, so the addresses go in as raw bytes (no
// formatting), after their count so the native part has one length.
std::string stacks_key(const Stacks& s) {
  std::string key;
  key.reserve((s.native.size() + 1) * sizeof(std::uint64_t) + 8);
  auto put = [&key](std::uint64_t v) { key.append(reinterpret_cast<const char*>(&v), sizeof v); };
  put(s.native.size());
  for (const Frame& f : s.native) put(f.address.value_or(0));
  if (s.script) {
    key += '|';
    key += to_string(s.language);
    for (const Frame& f : *s.script) {
      key += f.function.value_or("");
      key += '\x1f';
      key += f.file.value_or("");
      key += '\x1f';
      key += std::to_string(f.line.value_or(0));
      key += '\x1e';
    }
  }
  return key;
}

}  // namespace

// Streams the report: one line per connection, and each distinct stack
// serialized once (10,000 leaks from 100 sites repeat 100 stacks). Up to
// kInlineStacksUpTo connections, parsing it gives exactly to_json(report) (a
// unit test holds it to that): every stack in place, the contract's form.
//
// Extension (shared stacks, issue 19): a larger report (a load test, a pool
// leaking all day) writes each distinct stack in full where it first appears
// and every later use as {"stack": N}, N a key of the top-level "stacks"
// object; 10,000 leaks from 100 sites would otherwise be ~45 MB of the same
// 100 stacks. report_from_json resolves them, so `connleak report --format
// json` turns such a file back into the all-in-place form.
std::string to_json_text(const Report& report) {
  struct StackText {
    std::string text;
    std::size_t id = 0;  // its key in "stacks"; 0 until a second use refers to it
  };
  std::unordered_map<std::string, StackText> stack_text;
  // Stacks whose frames are shared (the same FrameList) are equal: their
  // entry is found without building the key. Frames equal but not shared
  // (a report read back from JSON) meet in stack_text by their key.
  static const char kNoScript = 0;
  using Identity = std::tuple<const void*, const void*, int>;
  std::map<Identity, StackText*> by_identity;
  std::vector<const StackText*> shared;  // "stacks", by id - 1
  const bool share = report.connections.size() > kInlineStacksUpTo;
  auto append_stacks = [&](std::string& to, const Stacks& s) {
    const Identity identity{s.native.identity(), s.script ? s.script->identity() : &kNoScript,
                            s.script ? static_cast<int>(s.language) : -1};
    auto [known, first_seen] = by_identity.try_emplace(identity, nullptr);
    bool inserted = false;
    if (first_seen) {
      auto [it, new_key] = stack_text.try_emplace(stacks_key(s));
      known->second = &it->second;
      inserted = new_key;
    }
    StackText& st = *known->second;
    if (inserted) st.text = dump(stacks_json(s));
    if (inserted || !share) {
      to += st.text;
      return;
    }
    if (!st.id) {
      shared.push_back(&st);
      st.id = shared.size();
    }
    to += "{\"stack\":";
    to += std::to_string(st.id);
    to += '}';
  };
  Report head;  // everything but the connections, which follow one by one
  static_cast<ReportHead&>(head) = report;
  json top = to_json(head);
  top.erase("connections");
  std::string out = dump(top, 2);
  out.pop_back();  // the closing brace: connections follow
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  out += ",\n  \"connections\": [";
  bool first = true;
  JsonFields cj;
  for (const Connection& c : report.connections) {
    // Everything but the stacks straight to text, then the stacks' text (and
    // the transaction, when it holds the stacks where it began).
    cj.clear();
    put_connection_fields(cj, c);
    std::optional<json> transaction;
    if (c.transaction) {
      if (c.transaction->began)
        transaction = transaction_json(*c.transaction, false);
      else
        cj["transaction"] = transaction_json(*c.transaction, false);
    }
    std::string text = cj.text();
    text.pop_back();  // '}'
    auto field = [&](const char* name, const Stacks& stacks) {
      text += ",\"";
      text += name;
      text += "\":";
      append_stacks(text, stacks);
    };
    field("acquired", c.acquired);
    if (c.init_stack) field("init_stack", *c.init_stack);
    if (c.closed_from) field("closed_from", *c.closed_from);
    if (c.closed_again_from) field("closed_again_from", *c.closed_again_from);
    if (transaction) {
      std::string t = dump(*transaction);  // never empty: "state" is always there
      t.pop_back();                        // '}'
      text += ",\"transaction\":";
      text += t;
      text += ",\"began\":";
      append_stacks(text, *c.transaction->began);
      text += '}';
    }
    text += '}';
    out += first ? "\n    " : ",\n    ";
    out += text;
    first = false;
  }
  out += first ? "]" : "\n  ]";
  for (std::size_t i = 0; i < shared.size(); ++i) {
    out += i ? ",\n    \"" : ",\n  \"stacks\": {\n    \"";
    out += std::to_string(i + 1);
    out += "\": ";
    out += shared[i]->text;
  }
  if (!shared.empty()) out += "\n  }";
  out += "\n}\n";
  return out;
}

Report report_from_json(const json& j) {
  if (!j.is_object() || j.value("tool", "") != "connleak")
    throw std::invalid_argument("not a connleak report (no \"tool\": \"connleak\")");
  const SharedStacks shared = shared_stacks_from(j);
  Report r;
  r.version = j.value("version", "");
  r.pid = integer<std::int64_t>(j, "pid", 0);
  r.ppid = integer<std::int64_t>(j, "ppid", 0);
  r.argv = j.value("argv", std::vector<std::string>{});
  r.trigger = j.value("trigger", "");
  r.generated_at = j.value("generated_at", "");
  r.notes = j.value("notes", std::vector<std::string>{});
  const json& s = j.at("summary");
  r.summary.opened = integer<std::uint64_t>(s, "opened", 0);
  r.summary.closed = integer<std::uint64_t>(s, "closed", 0);
  r.summary.open = integer<std::uint64_t>(s, "open", 0);
  r.summary.leaked = integer<std::uint64_t>(s, "leaked", 0);
  r.summary.flagged = integer<std::uint64_t>(s, "flagged", 0);
  r.summary.double_closes = integer<std::uint64_t>(s, "double_closes", 0);
  r.summary.unknown_closes = integer<std::uint64_t>(s, "unknown_closes", 0);
  r.summary.resets = integer<std::uint64_t>(s, "resets", 0);
  r.summary.inherited = integer<std::uint64_t>(s, "inherited", 0);
  r.summary.ignored = integer<std::uint64_t>(s, "ignored", 0);
  r.summary.complete = s.value("complete", true);
  r.summary.pooled = s.value("pooled", 0ULL);
  if (auto it = s.find("checkouts"); it != s.end() && it->is_object()) {
    r.summary.checkouts.taken = it->value("taken", 0ULL);
    r.summary.checkouts.returned = it->value("returned", 0ULL);
    r.summary.checkouts.open = it->value("open", 0ULL);
    r.summary.checkouts.leaked = it->value("leaked", 0ULL);
  }
  read_checkouts(j, r);
  for (const json& cj : j.at("connections")) {
    Connection c;
    c.id = integer<std::uint64_t>(cj, "id", 0);
    c.library = cj.value("library", "");
    c.handle = cj.value("handle", "");
    c.target = cj.value("target", "");
    c.status = cj.value("status", "");
    c.state = cj.value("state", "unknown");
    c.age_seconds = seconds(cj, "age_seconds");
    c.opened_at = cj.value("opened_at", "");
    c.closed_at = get_opt<std::string>(cj, "closed_at");
    c.thread = integer<std::int64_t>(cj, "thread", 0);
    c.resets = integer<std::uint32_t>(cj, "resets", 0);
    c.client_module = cj.value("client_module", "");
    for (const json& a : cj.value("alerts", json::array()))
      c.alerts.push_back({Named<AlertKind>(a.value("kind", "")), seconds(a, "after_seconds")});
    if (auto it = cj.find("acquired"); it != cj.end()) c.acquired = stacks_from(*it, &shared);
    if (auto it = cj.find("init_stack"); it != cj.end()) c.init_stack = stacks_from(*it, &shared);
    if (auto it = cj.find("closed_from"); it != cj.end()) c.closed_from = stacks_from(*it, &shared);
    if (auto it = cj.find("closed_again_from"); it != cj.end())
      c.closed_again_from = stacks_from(*it, &shared);
    c.closed_again_at = get_opt<std::string>(cj, "closed_again_at");
    c.server_id = opt_integer<std::int64_t>(cj, "server_id");
    c.protocol = get_opt<std::string>(cj, "protocol");
    c.closed_by = get_opt<std::string>(cj, "closed_by");
    c.statements = opt_integer<std::uint64_t>(cj, "statements");
    c.last_statement = get_opt<std::string>(cj, "last_statement");
    c.last_used_at = get_opt<std::string>(cj, "last_used_at");
    c.idle_seconds = get_opt<double>(cj, "idle_seconds");
    c.busy = get_opt<bool>(cj, "busy");
    c.pid = opt_integer<std::int64_t>(cj, "pid");
    c.pool = opt_integer<std::uint64_t>(cj, "pool");
    c.context = context_from(cj);
    if (auto it = cj.find("transaction"); it != cj.end() && it->is_object()) {
      TransactionInfo t;
      t.state = it->value("state", "unknown");
      t.seconds = seconds(*it, "seconds");
      t.note = get_opt<std::string>(*it, "note");
      if (auto b = it->find("began"); b != it->end()) t.began = stacks_from(*b, &shared);
      c.transaction = std::move(t);
    }
    r.connections.push_back(std::move(c));
  }
  for (const json& u : j.value("suppressions", json::array())) {
    std::string text = u.value("suppression", "");
    if (text.rfind("leak:", 0) == 0) text = text.substr(5);
    r.suppressions_used.push_back(
        {text, u.value("origin", ""), integer<std::uint64_t>(u, "hits", 0)});
  }
  return r;
}

}  // namespace connleak
