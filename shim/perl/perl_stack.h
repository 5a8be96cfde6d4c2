#pragma once
// The Perl stack of the calling thread, when the host is a Perl interpreter
// of the version the shim was built against (README: "Stacks in the
// program's own language"). One entry of shim/track/script_stack.cpp's table.
#include "collector/core/stack_depot.h"

namespace connleak::shim {

// A Perl interpreter the reader understands is in this process.
bool perl_present();
// Interned in script_depot(); 0 when there is no Perl stack to take.
StackId capture_perl_stack(int depth);

}  // namespace connleak::shim
