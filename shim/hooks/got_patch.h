#pragma once
// Points the GOT of objects that bypass LD_PRELOAD at the shim's hooks.
//
// Why: an object loaded with dlopen(RTLD_DEEPBIND) (every PHP extension on
// Debian) looks its symbols up in its own dependencies first, so its calls
// to libpq, the MySQL client and libc land in those libraries, never in the
// preloaded hooks; the libraries that dlopen loads along with it (libpq
// itself, for PHP's pgsql.so) bind the same way. memray's elf_shenanigans
// does the same rewrite for its allocator hooks.
//
// What is rewritten: JUMP_SLOT and GLOB_DAT relocations against a hooked name
// (shim/hooks/*_symbols.inc, dlsym, dlopen) whose slot holds what the
// object's own scope resolves the name to (or still the lazy PLT stub), and
// only when that definition lies outside the object: a definition of its own
// is the object's business, and a slot that already holds anything else
// (our hook, another interposer) is left alone. A RELRO page is made writable
// for the store and read-only again.
#include <cstddef>
#include <cstdint>
#include <vector>

namespace connleak::shim::got {

// The load addresses of the objects loaded right now, sorted.
std::vector<std::uintptr_t> loaded_objects();

// Rewrites the objects loaded now that `before` (from loaded_objects()) did
// not hold: the ones a dlopen just added. An object that is not deep-bound
// (a concurrent ordinary dlopen's) has nothing that qualifies. Serialised,
// fork-safe; never touches the shim, the loader or the vDSO. Returns the
// number of slots rewritten.
std::size_t patch_new_objects(const std::vector<std::uintptr_t>& before);

}  // namespace connleak::shim::got
