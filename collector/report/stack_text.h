#pragma once
// Stacks as text, one notation for every human-readable output (the text
// report, alerts, dumps, pool snapshots, SARIF and JUnit messages):
//   #0 0x5555... in open_report_conn /src/app.c:42 (/src/service)
// Frames in the host's language first ("Python stack:", "Ruby stack:"...), the native ones under
// "native stack:". Callers escape the strings first where the output needs it
// (the text report does; JSON-based formats escape on their own).
#include <string>
#include <string_view>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

// "Python", "Ruby", "Perl", "PHP": the heading of a stack in that language.
std::string_view language_title(ScriptLanguage language);

// Frames in the host's language (Python...): the program's innermost frame
// first, standard-library and installed-package runs folded with a count ("… 7 frames in asyncio,
// pymysql").
std::string format_script_frames(const std::vector<Frame>& frames, std::string_view indent);

// A block's stacks. The language's frames lead when they exist: in a Python host the
// native stack is mostly the interpreter, and the Python line is what the user
// has to fix. Each frame at `indent`, or under a heading at `indent`
// with the frames two spaces deeper when there is such a stack.
std::string format_stacks(const Stacks& stacks, std::string_view indent);

}  // namespace connleak
