#pragma once
// The PHP stack of the calling thread, when the host is a non-ZTS PHP whose
// engine is the version connleak was compiled against (CMake finds the PHP
// headers; without them php_stack_absent.cpp answers "not PHP"). Read the way
// phpspy reads it: executor_globals.current_execute_data and its
// prev_execute_data chain, memory reads only; nothing of PHP is called except
// get_zend_version (a one-instruction accessor of a startup string).
#include "collector/core/stack_depot.h"

namespace connleak::shim {

// True when the process is PHP: it exports executor_globals and
// get_zend_version (php-cli, php-fpm, libphp embedded RTLD_GLOBAL).
bool php_present();
// Innermost first, interned in script_depot(); 0 when there is nothing to
// take: not PHP, another engine version, not the PHP thread, no script
// running, or the executor shutting down.
StackId capture_php_stack(int depth);

}  // namespace connleak::shim
