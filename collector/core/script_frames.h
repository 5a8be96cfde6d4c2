#pragma once
// Stacks in the host's own language (Python, Ruby, Perl, PHP), stored like
// native ones: each (file, function, line) is interned once and a stack is a
// sequence of pointers to interned frames, kept in a second stack depot. No
// reference to an interpreter's object outlives a capture. A process hosts one
// such language at most (the first one found wins).
#include <cstdint>
#include <string_view>
#include <vector>

#include "collector/core/stack_depot.h"
#include "collector/report/report_model.h"

namespace connleak {

struct ScriptFrame {
  const char* file;
  const char* function;
  int line;
};

const ScriptFrame* intern_script_frame(std::string_view file, std::string_view function, int line);
// The same, for a file and function already interned (intern_string): no
// string is hashed, for the shim's per-code-object caches.
const ScriptFrame* intern_script_frame_interned(const char* file, const char* function, int line);
StackDepot& script_depot();
std::vector<Frame> script_frames(StackId id);

// Set once the shim has found an interpreter in the process: reports then
// carry a stack in that language for every connection (possibly empty), under
// the key script_language_name() ("python", "ruby", "perl", "php").
void set_script_host(ScriptLanguage language);
ScriptLanguage script_host();

}  // namespace connleak
