#include "collector/report/format/report_junit.h"

#include <map>
#include <sstream>

#include "collector/report/report_findings.h"
#include "collector/report/stack_text.h"
#include "collector/util/printable.h"

namespace connleak {

namespace {

std::string relative(const std::string& file, const JunitOptions& o) {
  std::string root = o.source_root;
  while (root.size() > 1 && root.back() == '/') root.pop_back();
  if (!root.empty() && file.compare(0, root.size() + 1, root + "/") == 0)
    return file.substr(root.size() + 1);
  return file;
}

std::string site_name(const Finding& f, const JunitOptions& o) {
  const Frame* frame = title_frame(f.connections.front()->acquired);
  if (!frame || !frame->file) return frame_title(frame);
  std::string name = frame->function.value_or("<unknown>");
  name += " (" + relative(*frame->file, o);
  if (frame->line) name += ":" + std::to_string(*frame->line);
  return name + ")";
}

std::string failure_message(const Finding& f) {
  const Connection& first = *f.connections.front();
  std::string n = std::to_string(f.connections.size());
  if (f.kind == "checkout_leak") return n + " checkout(s) of " + first.target + " never returned";
  if (f.kind == "checkout_held") return n + " checkout(s) of " + first.target + " held too long";
  if (f.kind == "leak") return n + " " + first.library.str() + " connection(s) never closed";
  if (f.kind == "double_close")
    return n + " " + first.library.str() + " connection(s) closed twice";
  return n + " " + first.library.str() + " connection(s) flagged: " + f.kind;
}

std::string failure_body(const Finding& f) {
  const Connection& first = *f.connections.front();
  std::ostringstream body;
  if (first.library == ConnLibrary::kCheckout)
    body << "Checked out from:\n" << format_stacks(first.acquired, "  ");
  else
    body << "Opened from:\n" << format_stacks(first.acquired, "  ") << format_closes(first);
  body << "Connections:\n";
  for (const Connection* c : f.connections) {
    body << "  " << c->library << ' ' << c->handle;
    if (!c->target.empty()) body << ' ' << c->target;
    body << " (";
    if (c->pid) body << "pid " << *c->pid << ", ";
    body << "id " << c->id << ", thread " << c->thread << ")\n";
  }
  return body.str();
}

}  // namespace

std::string xml_escape(std::string_view raw) {
  // An XML file that is not UTF-8 is rejected whole by CI tools.
  const std::string text = valid_utf8(raw);
  std::string out;
  out.reserve(text.size());
  for (char ch : text) {
    switch (ch) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        if (static_cast<unsigned char>(ch) < 0x20 && ch != '\t' && ch != '\n' && ch != '\r')
          out += '?';
        else
          out += ch;
    }
  }
  return out;
}

std::string render_junit(const Report& report, const JunitOptions& options) {
  std::vector<Finding> findings = collect_findings(report);
  const std::size_t tests = findings.empty() ? 1 : findings.size();
  const std::size_t failures = findings.size();
  const Summary& s = report.summary;

  std::ostringstream x;
  x << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  x << "<testsuites name=\"connleak\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" errors=\"0\">\n";
  x << "  <testsuite name=\"connleak\" tests=\"" << tests << "\" failures=\"" << failures
    << "\" errors=\"0\" skipped=\"0\"";
  if (!report.generated_at.empty()) x << " timestamp=\"" << xml_escape(report.generated_at) << '"';
  x << ">\n";
  x << "    <properties>\n";
  std::string program;
  for (const std::string& a : report.argv) program += (program.empty() ? "" : " ") + a;
  x << "      <property name=\"program\" value=\"" << xml_escape(program) << "\"/>\n";
  x << "      <property name=\"opened\" value=\"" << s.opened << "\"/>\n";
  x << "      <property name=\"closed\" value=\"" << s.closed << "\"/>\n";
  x << "      <property name=\"leaked\" value=\"" << s.leaked << "\"/>\n";
  x << "    </properties>\n";
  if (findings.empty()) {
    x << "    <testcase classname=\"connleak\" name=\"no leaked connections\"/>\n";
  }
  std::map<std::string, int> seen;  // rule + name -> occurrences
  for (const Finding& f : findings) {
    const Frame* frame = user_frame(f.connections.front()->acquired);
    // classname groups cases by rule in CI test views; name is the site, stable
    // across runs. Two stacks through the same line (different callers) get
    // "#2", "#3" in finding order, so CI never merges them into one case.
    std::string name = site_name(f, options);
    int n = ++seen[std::string(f.rule->name) + '\n' + name];
    if (n > 1) name += " #" + std::to_string(n);
    x << "    <testcase classname=\"connleak." << xml_escape(f.rule->name) << "\" name=\""
      << xml_escape(name) << '"';
    if (frame && frame->file) {
      x << " file=\"" << xml_escape(relative(*frame->file, options)) << '"';
      if (frame->line) x << " line=\"" << *frame->line << '"';
    }
    x << ">\n";
    x << "      <failure type=\"" << xml_escape(f.rule->id) << "\" message=\""
      << xml_escape(failure_message(f)) << "\">" << xml_escape(failure_body(f)) << "</failure>\n";
    x << "    </testcase>\n";
  }
  x << "  </testsuite>\n</testsuites>\n";
  return x.str();
}

}  // namespace connleak
