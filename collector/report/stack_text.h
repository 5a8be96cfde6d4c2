#pragma once
// Stacks as text, one notation for every human-readable output (the text
// report, alerts, dumps, pool snapshots, SARIF and JUnit messages):
//   #0 0x5555... in open_report_conn /src/app.c:42 (/src/service)
// Python frames first under "Python stack:", the native ones under
// "native stack:". Callers escape the strings first where the output needs it
// (the text report does; JSON-based formats escape on their own).
#include <string>
#include <string_view>
#include <vector>

#include "collector/report/report_model.h"

namespace connleak {

// Python frames: the program's innermost frame first, standard-library and
// installed-package runs folded with a count ("… 7 frames in asyncio, pymysql").
std::string format_python_frames(const std::vector<Frame>& frames, std::string_view indent);

// A block's stacks. Python frames lead when they exist: in a Python host the
// native stack is mostly the interpreter, and the Python line is what the user
// has to fix. Each frame at `indent`, or under a heading at `indent`
// with the frames two spaces deeper when there is a Python stack.
std::string format_stacks(const Stacks& stacks, std::string_view indent);

}  // namespace connleak
