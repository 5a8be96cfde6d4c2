#pragma once
// The boundary between the Perl reader (perl_reader.cpp, the only file that
// includes Perl's own headers, whose macros would clash with anything else)
// and the rest of the shim. Plain data only: pointers into the interpreter's
// memory, valid while the calling thread stays inside the hooked call.
#include <cstdint>

namespace connleak::shim::perl {

struct RawFrame {
  const char* file;  // the COP's file name (Perl's shared copy)
  const char* package;
  const char* name;  // sub name, or "(eval)" / "<main>"
  std::uint32_t package_len;
  std::uint32_t name_len;
  int line;
};

// True when the process runs a Perl interpreter of exactly the version and
// binary configuration the reader was compiled against (cached).
bool runtime_matches();

// The calling thread's Perl frames, innermost first, at most `max`; 0 when
// this thread runs no Perl, the interpreter is starting or tearing down, or
// anything looks inconsistent.
int read_frames(RawFrame* out, int max);

}  // namespace connleak::shim::perl
