#pragma once
// Python stacks, stored like native ones: each (file, function, line) is
// interned once and a stack is a sequence of pointers to interned frames, kept
// in a second stack depot. No reference to a Python object outlives a capture.
#include <string_view>
#include <vector>

#include "collector/core/stack_depot.h"
#include "collector/report/report_model.h"

namespace connleak {

struct PyFrameInfo {
  const char* file;
  const char* function;
  int line;
};

const PyFrameInfo* intern_py_frame(std::string_view file, std::string_view function, int line);
// The same, for a file and function already interned (intern_string): no
// string is hashed, for the shim's per-code-object cache.
const PyFrameInfo* intern_py_frame_interned(const char* file, const char* function, int line);
StackDepot& python_depot();
std::vector<Frame> python_frames(StackId id);

// Set once the shim has found a CPython interpreter in the process: reports
// then carry a "python" stack for every connection (possibly empty).
void set_python_host(bool yes);
bool python_host();

}  // namespace connleak
