#include "collector/report/stack_text.h"

#include <algorithm>
#include <cstring>
#include <sstream>

#include "collector/report/report_findings.h"
#include "collector/util/text_util.h"

namespace connleak {

namespace {

void render_native(std::ostringstream& out, const std::vector<Frame>& frames,
                   std::string_view indent) {
  for (std::size_t i = 0; i < frames.size(); ++i) {
    const Frame& f = frames[i];
    out << indent << '#' << i;
    if (f.address) out << ' ' << hex(*f.address);
    out << " in " << f.function.value_or("<unknown>");
    if (f.file) {
      out << ' ' << *f.file;
      if (f.line) out << ':' << *f.line;
    }
    if (f.module) out << " (" << *f.module << ')';
    out << '\n';
  }
}

std::string frame_package(const Frame& f) {
  std::string file = f.file.value_or(f.module.value_or("?"));
  std::size_t at = std::string::npos;
  for (const char* marker : {"/site-packages/", "/dist-packages/", "/share/connleak/python/"})
    if (std::size_t m = file.find(marker); m != std::string::npos) at = m + std::strlen(marker);
  if (at == std::string::npos) {
    std::size_t py = file.find("/python3");
    if (py != std::string::npos) at = file.find('/', py + 1);
    if (at != std::string::npos) ++at;
  }
  if (at == std::string::npos) at = file.rfind('/') == std::string::npos ? 0 : file.rfind('/') + 1;
  std::string rest = file.substr(at);
  rest = rest.substr(0, rest.find('/'));
  if (rest.size() > 3 && rest.ends_with(".py")) rest.resize(rest.size() - 3);
  return rest;
}

std::string fold_line(const std::vector<Frame>& frames, std::size_t from, std::size_t to) {
  std::vector<std::string> packages;
  for (std::size_t i = from; i < to; ++i) {
    std::string p = frame_package(frames[i]);
    if (std::find(packages.begin(), packages.end(), p) == packages.end()) packages.push_back(p);
  }
  std::string line =
      "\u2026 " + std::to_string(to - from) + " frame" + (to - from == 1 ? "" : "s") + " in ";
  for (std::size_t i = 0; i < packages.size(); ++i) line += (i ? ", " : "") + packages[i];
  return line;
}

void render_frame(std::ostringstream& out, const Frame& f, std::size_t i, std::string_view indent) {
  out << indent << '#' << i << " in " << (f.function ? *f.function : std::string("<unknown>"));
  if (f.file) {
    out << ' ' << *f.file;
    if (f.line) out << ':' << *f.line;
  }
  out << '\n';
}

//////
// The program's innermost frame leads; runs of standard-library and
// installed-package frames fold into one line each (the JSON keeps them all).
// The run above the leading frame (what it called into) follows it.
}  // namespace

std::string_view language_title(ScriptLanguage language) {
  switch (language) {
    case ScriptLanguage::kPython:
      return "Python";
    case ScriptLanguage::kRuby:
      return "Ruby";
    case ScriptLanguage::kPerl:
      return "Perl";
    case ScriptLanguage::kPhp:
      return "PHP";
    case ScriptLanguage::kNone:
      break;
  }
  return "script";
}

std::string format_script_frames(const std::vector<Frame>& frames, std::string_view indent) {
  std::ostringstream out;
  std::size_t lead = 0;
  while (lead < frames.size() && is_library_frame(frames[lead])) ++lead;
  if (lead == frames.size()) {  // nothing of the program's: show everything
    for (std::size_t i = 0; i < frames.size(); ++i) render_frame(out, frames[i], i, indent);
    return out.str();
  }
  // The program's innermost frame leads; runs of standard-library and
  // installed-package frames fold into one line each (the JSON keeps them all).
  // The run above the leading frame (what it called into) follows it.
  render_frame(out, frames[lead], lead, indent);
  if (lead > 0) out << indent << "   (called into " << fold_line(frames, 0, lead) << ")\n";
  for (std::size_t i = lead + 1; i < frames.size();) {
    if (!is_library_frame(frames[i])) {
      render_frame(out, frames[i], i, indent);
      ++i;
      continue;
    }
    std::size_t end = i;
    while (end < frames.size() && is_library_frame(frames[end])) ++end;
    if (end - i == 1)
      render_frame(out, frames[i], i, indent);
    else
      out << indent << fold_line(frames, i, end) << '\n';
    i = end;
  }
  return out.str();
}

std::string format_stacks(const Stacks& s, std::string_view indent) {
  std::ostringstream out;
  if (s.script && !s.script->empty()) {
    const std::string deeper = std::string(indent) + "  ";
    out << indent << language_title(s.language) << " stack:\n"
        << format_script_frames(*s.script, deeper);
    if (!s.native.empty()) {  // a holder's current stack is Python only
      out << indent << "native stack:\n";
      render_native(out, s.native, deeper);
    }
  } else if (!s.native.empty()) {
    render_native(out, s.native, indent);
  } else {
    out << indent << "<no stack captured>\n";
  }
  return out.str();
}

}  // namespace connleak
