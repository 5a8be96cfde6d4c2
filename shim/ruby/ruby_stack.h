#pragma once
// The Ruby stack of the calling thread, when the host is CRuby: read with
// rb_profile_frames (the public C API stackprof uses), found at run time with
// dlsym (never linked), without running Ruby, allocating a Ruby object or
// taking the GVL, which ruby-pg releases around its libpq calls. Skips
// (0 frames), rather than risks: no VM, a thread with no Ruby execution
// context, a garbage collection running or finishing during the read, a
// libruby of another release than the headers the reader was built with.
#include "collector/core/stack_depot.h"

namespace connleak::shim {

// True when the process hosts a Ruby whose frames can be read (its C API in
// the global scope, a release matching the headers); looked up once.
bool ruby_present();
// Interned in script_depot(), innermost first; 0 when there is nothing to take.
StackId capture_ruby_stack(int depth);

}  // namespace connleak::shim
