#pragma once
// Report entry points run inside the host: at exit, in the worker thread,
// in an _exit hook. An exception escaping one of them (nlohmann's
// type_error.316 on a non-UTF-8 byte, bad_alloc, a parse of a strange value)
// would reach std::terminate and abort the host. Each entry point runs its
// body through host_safe(): a failure is one "connleak: ..." line on stderr
// and the program goes on.
#include <cstdio>
#include <exception>

#include "collector/util/logger.h"

namespace connleak::shim {

// One line, built on the stack: after a bad_alloc nothing may allocate.
inline void say_internal_failure(const char* what, const char* why) noexcept {
  char line[256];
  int n = std::snprintf(
      line, sizeof line,
      "connleak: could not %s (internal error: %s); the program is not affected\n", what, why);
  if (n < 0) return;
  std::size_t len =
      static_cast<std::size_t>(n) < sizeof line ? static_cast<std::size_t>(n) : sizeof line - 1;
  for (std::size_t i = 0; i + 1 < len; ++i)  // the reason may quote host bytes
    if (static_cast<unsigned char>(line[i]) < 0x20 || static_cast<unsigned char>(line[i]) >= 0x7f)
      line[i] = '?';
  write_all_no_sigpipe(2, line, len);
}

template <typename Body>
auto host_safe(const char* what, Body&& body) noexcept -> decltype(body()) {
  try {
    return body();
  } catch (const std::exception& e) {
    say_internal_failure(what, e.what());
  } catch (...) {
    say_internal_failure(what, "unknown exception");
  }
  return decltype(body())();
}

}  // namespace connleak::shim
