#pragma once
// The bodies of the libpq hooks. Each takes the Resolution (which real
// function, from which libpq copy, whether it is libpq calling itself) so the
// same body serves the exported hook (resolved in the caller's scope) and the
// wrappers dlsym hands to ctypes (bound to one library copy).
#include <libpq-fe.h>

#include "shim/hooks/real_symbol.h"

#define CONNLEAK_STRIP(...) __VA_ARGS__

namespace connleak::shim {

#define CONNLEAK_HOOK(name, ret, fail, params, args) \
  ret impl_##name(const Resolution& r, CONNLEAK_STRIP params);
#define CONNLEAK_COMMAND(name, ret, fail, params, args) CONNLEAK_HOOK(name, ret, fail, params, args)
#define CONNLEAK_CALL(name)
#include "shim/hooks/libpq_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL

// For dlsym: a wrapper bound to `real` (one library copy) if `name` is a
// libpq hook, else null.
void* libpq_dlsym_wrapper(const char* name, void* real);

}  // namespace connleak::shim
