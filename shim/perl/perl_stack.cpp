#include "shim/perl/perl_stack.h"

#include <cstring>
#include <string_view>

#include "collector/core/script_frames.h"
#include "shim/perl/perl_frames.h"

namespace connleak::shim {

#if CONNLEAK_PERL_READER

bool perl_present() {
  return perl::runtime_matches();
}

StackId capture_perl_stack(int depth) {
  if (depth <= 0) return 0;
  if (depth > static_cast<int>(kMaxFrames)) depth = kMaxFrames;
  perl::RawFrame raw[kMaxFrames];
  const int n = perl::read_frames(raw, depth);
  if (n <= 0) return 0;
  std::uintptr_t frames[kMaxFrames];
  char function[2 * 1024 + 3];  // package "::" name, each at most 1024 (perl_reader.cpp)
  for (int i = 0; i < n; ++i) {
    const perl::RawFrame& f = raw[i];
    std::size_t len = 0;
    if (f.package_len) {
      std::memcpy(function, f.package, f.package_len);
      std::memcpy(function + f.package_len, "::", 2);
      len = f.package_len + 2;
    }
    std::memcpy(function + len, f.name, f.name_len);
    len += f.name_len;
    const ScriptFrame* frame = intern_script_frame(f.file ? std::string_view(f.file) : "",
                                                   std::string_view(function, len), f.line);
    frames[i] = reinterpret_cast<std::uintptr_t>(frame);
  }
  return script_depot().intern(frames, static_cast<std::size_t>(n));
}

#else  // built without the installed perl's CORE headers: no Perl frames

bool perl_present() {
  return false;
}
StackId capture_perl_stack(int) {
  return 0;
}

#endif

}  // namespace connleak::shim
