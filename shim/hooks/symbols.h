#pragma once
// Ids for every client-library function the shim interposes or calls.
namespace connleak::shim {

enum SymbolId : int {
#define CONNLEAK_HOOK(name, ...) kSym_##name,
#define CONNLEAK_COMMAND(name, ...) kSym_##name,
#define CONNLEAK_CALL(name) kSym_##name,
#include "shim/hooks/libpq_symbols.inc"
#include "shim/hooks/mysql_symbols.inc"
#undef CONNLEAK_HOOK
#undef CONNLEAK_COMMAND
#undef CONNLEAK_CALL
  kSymbolCount
};

extern const char* const kSymbolNames[kSymbolCount];

}  // namespace connleak::shim
