#include "collector/report/format/report_sarif.h"

#include <cctype>
#include <cstdio>
#include <set>

#include "collector/report/report_findings.h"
#include "collector/report/stack_text.h"

namespace connleak {

using nlohmann::ordered_json;

namespace {

constexpr const char* kSchema = "https://json.schemastore.org/sarif-2.1.0.json";
constexpr const char* kRootId = "%SRCROOT%";

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

// RFC 3986: keep unreserved characters and '/', percent-encode the rest, so
// a path with spaces or '#' is still one valid URI.
std::string percent_encode(const std::string& path) {
  std::string out;
  for (unsigned char ch : path) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~' || ch == '/') {
      out += static_cast<char>(ch);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", ch);
      out += buf;
    }
  }
  return out;
}

std::string root_dir(const SarifOptions& o) {
  std::string root = o.source_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  return root;
}

ordered_json artifact(std::string file, const SarifOptions& o) {
  std::string root = root_dir(o);
  if (!file.empty() && file[0] == '/') {
    if (!root.empty() && starts_with(file, root + "/"))
      return {{"uri", percent_encode(file.substr(root.size() + 1))}, {"uriBaseId", kRootId}};
    return {{"uri", "file://" + percent_encode(file)}};
  }
  while (starts_with(file, "./")) file.erase(0, 2);
  ordered_json a = {{"uri", percent_encode(file.empty() ? "unknown" : file)}};
  if (!root.empty()) a["uriBaseId"] = kRootId;
  return a;
}

// Code scanning needs a physical location on every result; a stack without any
// file (stripped binary) still points at its module so the result is kept.
ordered_json physical(const Frame* f, const Stacks& stacks, const SarifOptions& o) {
  std::string file;
  int line = 1;
  if (f) {
    file = *f->file;
    if (f->line && *f->line > 0) line = *f->line;
  } else {
    for (const Frame& n : stacks.native)
      if (n.module) {
        file = *n.module;
        break;
      }
  }
  return {{"artifactLocation", artifact(file, o)}, {"region", {{"startLine", line}}}};
}

std::string frame_text(const Frame& f) {
  std::string t = "in " + f.function.value_or("<unknown>");
  if (f.file) {
    t += " " + *f.file;
    if (f.line) t += ":" + std::to_string(*f.line);
  }
  if (f.module) t += " (" + *f.module + ")";
  return t;
}

// Thread-flow locations run in execution order: outermost caller first.
ordered_json flow_locations(const std::vector<Frame>& frames, const SarifOptions& o) {
  ordered_json locs = ordered_json::array();
  for (auto it = frames.rbegin(); it != frames.rend(); ++it) {
    ordered_json loc = {{"message", {{"text", frame_text(*it)}}}};
    // Library frames carry paths of someone else's build ("../sysdeps/..."):
    // only the user's frames get a location code scanning can open.
    if (it->file && !is_library_frame(*it)) {
      loc["physicalLocation"] = {
          {"artifactLocation", artifact(*it->file, o)},
          {"region", {{"startLine", it->line && *it->line > 0 ? *it->line : 1}}}};
    }
    locs.push_back({{"location", std::move(loc)}});
  }
  return locs;
}

ordered_json code_flow(const Stacks& s, const SarifOptions& o) {
  const bool script = s.script && !s.script->empty();
  const std::string text =
      script ? std::string(language_title(s.language)) + " stack that opened the connection"
             : std::string("stack that opened the connection");
  ordered_json flow = {
      {"message", {{"text", text}}},
      {"threadFlows", ordered_json::array({ordered_json{
                          {"locations", flow_locations(script ? *s.script : s.native, o)}}})}};
  return flow;
}

std::string fingerprint(const std::string& text) {
  std::uint64_t h = 1469598103934665603ULL;  // FNV-1a: stable across builds and platforms
  for (unsigned char ch : text) {
    h ^= ch;
    h *= 1099511628211ULL;
  }
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

std::string message(const Finding& f) {
  const Connection& first = *f.connections.front();
  const std::size_t n = f.connections.size();
  std::string title = frame_title(title_frame(first.acquired));
  std::string text;
  if (f.kind == "checkout_leak") {
    text = std::to_string(n) + " checkout(s) of " + first.target + " taken in " + title +
           " never returned.";
  } else if (f.kind == "checkout_held") {
    char after[48];
    std::snprintf(after, sizeof after, " held longer than %.1fs.",
                  first.alerts.front().after_seconds);
    text = std::to_string(n) + " checkout(s) of " + first.target + " taken in " + title + after;
  } else if (f.kind == "leak") {
    text = std::to_string(n) + " " + first.library.str() + " connection(s) opened in " + title +
           " never closed.";
  } else if (f.kind == "double_close") {
    text = std::to_string(n) + " " + first.library.str() + " connection(s) opened in " + title +
           " closed twice.";
  } else {
    text = std::to_string(n) + " " + first.library.str() + " connection(s) opened in " + title +
           " flagged: " + first.alerts.front().kind.str();
    char after[48];
    std::snprintf(after, sizeof after, " after %.1fs.", first.alerts.front().after_seconds);
    text += after;
  }
  std::vector<std::int64_t> pids = finding_pids(f);
  if (!pids.empty()) {
    text += " Process(es):";
    for (std::size_t i = 0; i < pids.size(); ++i)
      text += (i ? ", " : " ") + std::to_string(pids[i]);
    text += ".";
  }
  if (!first.target.empty()) text += " Target: " + first.target + ".";
  if (first.library == ConnLibrary::kCheckout)
    return text + "\n\nChecked out from:\n" + format_stacks(first.acquired, "  ");
  text += "\n\nOpened from:\n" + format_stacks(first.acquired, "  ") + format_closes(first);
  return text;
}

std::size_t rule_index(const Rule* rule) {
  const auto& rules = all_rules();
  for (std::size_t i = 0; i < rules.size(); ++i)
    if (&rules[i] == rule) return i;
  return 0;
}

}  // namespace

ordered_json to_sarif(const Report& report, const SarifOptions& options) {
  ordered_json rules = ordered_json::array();
  for (const Rule& r : all_rules()) {
    rules.push_back(
        {{"id", r.id},
         {"name", r.name},
         {"shortDescription", {{"text", r.short_description}}},
         {"fullDescription", {{"text", r.help}}},
         {"help", {{"text", r.help}}},
         {"defaultConfiguration", {{"level", r.level}}},
         {"properties",
          {{"tags", ordered_json::array({"reliability", "database"})}, {"precision", "high"}}}});
  }

  ordered_json results = ordered_json::array();
  for (const Finding& f : collect_findings(report)) {
    const Connection& first = *f.connections.front();
    ordered_json handles = ordered_json::array();
    std::set<std::string> targets;
    std::set<std::string> tests;  // extension: the pytest node ids that opened them
    for (const Connection* c : f.connections) {
      handles.push_back({{"pid", c->pid ? ordered_json(*c->pid) : ordered_json(nullptr)},
                         {"id", c->id},
                         {"handle", c->handle}});
      if (!c->target.empty()) targets.insert(c->target);
      if (c->context) tests.insert(c->context->test);
    }
    ordered_json result = {
        {"ruleId", f.rule->id},
        {"ruleIndex", rule_index(f.rule)},
        {"level", f.rule->level},
        {"message", {{"text", message(f)}}},
        {"locations", ordered_json::array(
                          {ordered_json{{"physicalLocation", physical(user_frame(first.acquired),
                                                                      first.acquired, options)}}})},
        {"codeFlows", ordered_json::array({code_flow(first.acquired, options)})},
        {"partialFingerprints",
         {{"connleakSite/v1", fingerprint(std::string(f.rule->id) + '\n' + f.site_key)}}},
        {"properties",
         {{"count", f.connections.size()},
          {"library", first.library.str()},
          {"pids", finding_pids(f)},
          {"targets", targets},
          {"connections", std::move(handles)}}}};
    if (!tests.empty()) result["properties"]["tests"] = tests;
    results.push_back(std::move(result));
  }

  const Summary& s = report.summary;
  ordered_json run = {
      {"tool",
       {{"driver",
         {{"name", "connleak"},
          {"version", CONNLEAK_VERSION},
          {"semanticVersion", CONNLEAK_VERSION},
          {"rules", std::move(rules)}}}}},
  };
  std::string root = root_dir(options);
  if (!root.empty()) {
    run["originalUriBaseIds"] = {
        {kRootId, {{"uri", "file://" + percent_encode(root == "/" ? root : root + "/")}}}};
  }
  run["results"] = std::move(results);
  run["properties"] = {{"summary",
                        {{"opened", s.opened},
                         {"closed", s.closed},
                         {"leaked", s.leaked},
                         {"flagged", s.flagged},
                         {"double_closes", s.double_closes},
                         {"complete", s.complete}}}};

  return {
      {"$schema", kSchema}, {"version", "2.1.0"}, {"runs", ordered_json::array({std::move(run)})}};
}

std::string render_sarif(const Report& report, const SarifOptions& options) {
  return to_sarif(report, options).dump(2, ' ', false, nlohmann::json::error_handler_t::replace) +
         "\n";
}

}  // namespace connleak
