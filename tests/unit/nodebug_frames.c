/* A library built without debug information (-g0), for Symbolizer tests: its
 * hidden function is in the symbol table only (dladdr cannot see it, no DWARF
 * names it), and libbacktrace reads this module in a state of its own. */
#include <stdint.h>

__attribute__((noinline, visibility("hidden"))) int nodebug_hidden_function(int x) {
  __asm__ volatile("" : "+r"(x));
  return x + 1;
}

uintptr_t nodebug_hidden_function_address(void) {
  return (uintptr_t)&nodebug_hidden_function;
}
