// Built when CMake found no PHP headers (php-dev): the shim cannot know the
// engine's layouts, so PHP hosts get native stacks only (README).
#include "shim/php/php_stack.h"

namespace connleak::shim {

bool php_present() {
  return false;
}

StackId capture_php_stack(int) {
  return 0;
}

}  // namespace connleak::shim
