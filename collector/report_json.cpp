#include "collector/report_json.h"

#include <cstdio>
#include <stdexcept>
#include <unordered_map>

#include "collector/report_findings.h"

namespace connleak {

using nlohmann::json;

namespace {

template <typename T>
json opt(const std::optional<T>& value) {
  return value ? json(*value) : json(nullptr);
}

std::string hex(std::uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "0x%llx", static_cast<unsigned long long>(v));
  return buf;
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
  if (s.python) j["python"] = frames_json(*s.python, false);
  return j;
}

template <typename T>
std::optional<T> get_opt(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return std::nullopt;
  return it->get<T>();
}

Frame frame_from(const json& j) {
  Frame f;
  if (auto addr = get_opt<std::string>(j, "address")) f.address = std::stoull(*addr, nullptr, 16);
  f.module = get_opt<std::string>(j, "module");
  f.function = get_opt<std::string>(j, "function");
  f.file = get_opt<std::string>(j, "file");
  f.line = get_opt<int>(j, "line");
  return f;
}

std::vector<Frame> frames_from(const json& j) {
  std::vector<Frame> out;
  if (!j.is_array()) throw std::invalid_argument("stack is not an array");
  for (const json& f : j) out.push_back(frame_from(f));
  return out;
}

Stacks stacks_from(const json& j) {
  Stacks s;
  if (auto it = j.find("native"); it != j.end()) s.native = frames_from(*it);
  if (auto it = j.find("python"); it != j.end() && !it->is_null()) s.python = frames_from(*it);
  return s;
}

json pools_json(const std::vector<PoolInfo>& pools) {
  json arr = json::array();
  for (const PoolInfo& p : pools) {
    json pj = {{"id", p.id},           {"kind", p.kind},
               {"name", p.name},       {"target", p.target},
               {"max_size", p.max_size}, {"connections", p.connections},
               {"checked_out", p.checked_out}};
    if (p.pid) pj["pid"] = *p.pid;
    arr.push_back(std::move(pj));
  }
  return arr;
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
    for (const AlertInfo& a : c.alerts) alerts.push_back({{"kind", a.kind}, {"after_seconds", a.after_seconds}});
    cj["alerts"] = std::move(alerts);
    cj["acquired"] = stacks_json(c.acquired);
    if (c.holder_now) {
      json h = json::object();
      if (c.holder_now->python) h["python"] = frames_json(*c.holder_now->python, false);
      cj["holder_now"] = std::move(h);
    }
    if (c.holder_note) cj["holder_note"] = *c.holder_note;
    if (c.pid) cj["pid"] = *c.pid;
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
      c.alerts.push_back({a.value("kind", ""), a.value("after_seconds", 0.0)});
    if (auto it = cj.find("acquired"); it != cj.end()) c.acquired = stacks_from(*it);
    if (auto it = cj.find("holder_now"); it != cj.end() && it->is_object()) c.holder_now = stacks_from(*it);
    c.holder_note = get_opt<std::string>(cj, "holder_note");
    c.pid = get_opt<std::int64_t>(cj, "pid");
    r.checkouts.push_back(std::move(c));
  }
  if (auto it = j.find("snapshot"); it != j.end() && it->is_object()) {
    r.snapshot_pool = get_opt<std::uint64_t>(*it, "pool");
    r.waited_seconds = get_opt<double>(*it, "waited_seconds");
    r.refusal = get_opt<std::string>(*it, "refusal");
  }
}

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
  j["summary"] = {{"opened", s.opened},         {"closed", s.closed},
                  {"open", s.open},             {"leaked", s.leaked},
                  {"flagged", s.flagged},       {"double_closes", s.double_closes},
                  {"unknown_closes", s.unknown_closes}, {"resets", s.resets},
                  {"inherited", s.inherited},   {"ignored", s.ignored},
                  {"complete", s.complete},     {"pooled", s.pooled},
                  {"checkouts",
                   {{"taken", s.checkouts.taken},
                    {"returned", s.checkouts.returned},
                    {"open", s.checkouts.open},
                    {"leaked", s.checkouts.leaked}}}};
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
  for (const Connection& c : r.connections) {
    json cj;
    cj["id"] = c.id;
    cj["library"] = c.library;
    cj["handle"] = c.handle;
    cj["target"] = c.target;
    cj["status"] = c.status;
    cj["state"] = c.state;
    cj["age_seconds"] = c.age_seconds;
    cj["opened_at"] = c.opened_at;
    cj["closed_at"] = opt(c.closed_at);
    cj["thread"] = c.thread;
    cj["resets"] = c.resets;
    cj["client_module"] = c.client_module;
    json alerts = json::array();
    for (const AlertInfo& a : c.alerts) alerts.push_back({{"kind", a.kind}, {"after_seconds", a.after_seconds}});
    cj["alerts"] = alerts;
    cj["acquired"] = stacks_json(c.acquired);
    if (c.closed_from) cj["closed_from"] = stacks_json(*c.closed_from);
    if (c.closed_again_from) cj["closed_again_from"] = stacks_json(*c.closed_again_from);
    if (c.closed_again_from || c.closed_again_at) cj["closed_again_at"] = opt(c.closed_again_at);
    cj["server_id"] = opt(c.server_id);
    if (c.protocol) cj["protocol"] = *c.protocol;
    if (c.closed_by) cj["closed_by"] = *c.closed_by;
    if (c.transaction) {
      json t = {{"state", c.transaction->state}, {"seconds", c.transaction->seconds}};
      if (c.transaction->note) t["note"] = *c.transaction->note;
      if (c.transaction->began) t["began"] = stacks_json(*c.transaction->began);
      cj["transaction"] = std::move(t);
    }
    if (c.pid) cj["pid"] = *c.pid;
    if (c.pool) cj["pool"] = *c.pool;
    conns.push_back(std::move(cj));
  }
  j["connections"] = std::move(conns);
  if (!r.suppressions_used.empty()) {
    json used = json::array();
    for (const SuppressionUse& u : r.suppressions_used)
      used.push_back({{"suppression", "leak:" + u.pattern}, {"origin", u.origin}, {"hits", u.hits}});
    j["suppressions"] = std::move(used);
  }
  return j;
}

namespace {

// A key equal for equal stacks: addresses for native frames, the interned
// strings' text for Python ones.
std::string stacks_key(const Stacks& s) {
  std::string key;
  key.reserve(s.native.size() * 17 + 8);
  char buf[24];
  for (const Frame& f : s.native) {
    std::snprintf(buf, sizeof buf, "%llx,", static_cast<unsigned long long>(f.address.value_or(0)));
    key += buf;
  }
  if (s.python) {
    key += '|';
    for (const Frame& f : *s.python) {
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
// serialized once (10,000 leaks from 100 sites repeat 100 stacks). Parsing it
// gives exactly to_json(report) (a unit test holds it to that).
std::string to_json_text(const Report& report) {
  std::unordered_map<std::string, std::string> stack_text;
  auto stacks_text = [&](const Stacks& s) -> const std::string& {
    auto [it, inserted] = stack_text.try_emplace(stacks_key(s));
    if (inserted) it->second = stacks_json(s).dump();
    return it->second;
  };
  Report head = report;
  head.connections.clear();
  json top = to_json(head);
  top.erase("connections");
  std::string out = top.dump(2);
  out.pop_back();  // the closing brace: connections follow
  while (!out.empty() && (out.back() == '\n' || out.back() == ' ')) out.pop_back();
  out += ",\n  \"connections\": [";
  bool first = true;
  for (const Connection& c : report.connections) {
    // Everything but the stacks through the DOM (small), then the stacks' text.
    Connection bare = c;
    bare.acquired = Stacks{};
    bare.closed_from.reset();
    bare.closed_again_from.reset();
    if (bare.transaction) bare.transaction->began.reset();
    Report one;
    one.connections.push_back(std::move(bare));
    json cj = to_json(one)["connections"][0];
    cj.erase("acquired");
    cj.erase("closed_from");
    cj.erase("closed_again_from");
    std::string text = cj.dump();
    text.pop_back();  // '}'
    text += ",\"acquired\":" + stacks_text(c.acquired);
    if (c.closed_from) text += ",\"closed_from\":" + stacks_text(*c.closed_from);
    if (c.closed_again_from) text += ",\"closed_again_from\":" + stacks_text(*c.closed_again_from);
    if (c.transaction && c.transaction->began) {
      // "transaction":{...} is already in `text`: reopen it for "began".
      std::string marker = "\"transaction\":" + cj["transaction"].dump();
      std::size_t at = text.find(marker);
      if (at != std::string::npos) {
        std::string with = marker.substr(0, marker.size() - 1) + ",\"began\":" + stacks_text(*c.transaction->began) + "}";
        text.replace(at, marker.size(), with);
      }
    }
    text += '}';
    out += first ? "\n    " : ",\n    ";
    out += text;
    first = false;
  }
  out += first ? "]\n}\n" : "\n  ]\n}\n";
  return out;
}

Report report_from_json(const json& j) {
  if (!j.is_object() || j.value("tool", "") != "connleak")
    throw std::invalid_argument("not a connleak report (no \"tool\": \"connleak\")");
  Report r;
  r.version = j.value("version", "");
  r.pid = j.value("pid", 0);
  r.ppid = j.value("ppid", 0);
  r.argv = j.value("argv", std::vector<std::string>{});
  r.trigger = j.value("trigger", "");
  r.generated_at = j.value("generated_at", "");
  const json& s = j.at("summary");
  r.summary.opened = s.value("opened", 0ULL);
  r.summary.closed = s.value("closed", 0ULL);
  r.summary.open = s.value("open", 0ULL);
  r.summary.leaked = s.value("leaked", 0ULL);
  r.summary.flagged = s.value("flagged", 0ULL);
  r.summary.double_closes = s.value("double_closes", 0ULL);
  r.summary.unknown_closes = s.value("unknown_closes", 0ULL);
  r.summary.resets = s.value("resets", 0ULL);
  r.summary.inherited = s.value("inherited", 0ULL);
  r.summary.ignored = s.value("ignored", 0ULL);
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
    c.id = cj.value("id", 0ULL);
    c.library = cj.value("library", "");
    c.handle = cj.value("handle", "");
    c.target = cj.value("target", "");
    c.status = cj.value("status", "");
    c.state = cj.value("state", "unknown");
    c.age_seconds = cj.value("age_seconds", 0.0);
    c.opened_at = cj.value("opened_at", "");
    c.closed_at = get_opt<std::string>(cj, "closed_at");
    c.thread = cj.value("thread", 0LL);
    c.resets = cj.value("resets", 0U);
    c.client_module = cj.value("client_module", "");
    for (const json& a : cj.value("alerts", json::array()))
      c.alerts.push_back({a.value("kind", ""), a.value("after_seconds", 0.0)});
    if (auto it = cj.find("acquired"); it != cj.end()) c.acquired = stacks_from(*it);
    if (auto it = cj.find("closed_from"); it != cj.end()) c.closed_from = stacks_from(*it);
    if (auto it = cj.find("closed_again_from"); it != cj.end()) c.closed_again_from = stacks_from(*it);
    c.closed_again_at = get_opt<std::string>(cj, "closed_again_at");
    c.server_id = get_opt<std::int64_t>(cj, "server_id");
    c.protocol = get_opt<std::string>(cj, "protocol");
    c.closed_by = get_opt<std::string>(cj, "closed_by");
    c.pid = get_opt<std::int64_t>(cj, "pid");
    c.pool = get_opt<std::uint64_t>(cj, "pool");
    if (auto it = cj.find("transaction"); it != cj.end() && it->is_object()) {
      TransactionInfo t;
      t.state = it->value("state", "unknown");
      t.seconds = it->value("seconds", 0.0);
      t.note = get_opt<std::string>(*it, "note");
      if (auto b = it->find("began"); b != it->end()) t.began = stacks_from(*b);
      c.transaction = std::move(t);
    }
    r.connections.push_back(std::move(c));
  }
  for (const json& u : j.value("suppressions", json::array())) {
    std::string text = u.value("suppression", "");
    if (text.rfind("leak:", 0) == 0) text = text.substr(5);
    r.suppressions_used.push_back({text, u.value("origin", ""), u.value("hits", 0ULL)});
  }
  return r;
}

}  // namespace connleak
