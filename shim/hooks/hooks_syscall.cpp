// syscall(2) itself: libuv (Node.js) closes descriptors with
// syscall(SYS_close, fd) and syscall(SYS_close_range, ...) instead of the libc
// wrappers, so those closes never reach the close()/close_range() hooks and
// every socket-level connection of a Node program looked leaked.
//
// Only the close family is looked at, before the real call (as close() does:
// once the number is free another thread's connect may get it); every other
// system call passes through untouched, and errno is whatever the real call set.
#include <dlfcn.h>
#include <sys/syscall.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>

#include "shim/hooks/libc_real.h"
#include "shim/runtime/export.h"
#include "shim/track/socket_table.h"
#include "shim/track/socket_track.h"

namespace sock = connleak::shim::sock;

namespace {

constexpr long kCloseRangeCloexec = 4;  // CLOSE_RANGE_CLOEXEC: marks, closes nothing

void before(long number, long a0, long a1, long a2) {
  // Our bookkeeping must not leave its errno behind for the caller.
  int saved = errno;
  if (number == SYS_close) {
    int fd = static_cast<int>(a0);
    if (sock::has_conn(fd)) sock::on_close(fd, "syscall(SYS_close)");
  }
#ifdef SYS_close_range
  else if (number == SYS_close_range && !(a2 & kCloseRangeCloexec)) {
    sock::on_close_range(static_cast<unsigned>(a0), static_cast<unsigned>(a1));
  }
#endif
  errno = saved;
}

}  // namespace

// glibc's syscall() moves six argument registers (and the stack slot of the
// sixth) into place whatever the call number needs; reading six variadic
// longs here does the same, and all six are passed on unchanged.
extern "C" CONNLEAK_EXPORT long syscall(long number, ...) {
  va_list ap;
  va_start(ap, number);
  long a0 = va_arg(ap, long), a1 = va_arg(ap, long), a2 = va_arg(ap, long);
  long a3 = va_arg(ap, long), a4 = va_arg(ap, long), a5 = va_arg(ap, long);
  va_end(ap);
  before(number, a0, a1, a2);
  auto fn = CONNLEAK_LIBC_REAL(syscall);
  if (!fn) {
    errno = ENOSYS;
    return -1;
  }
  return fn(number, a0, a1, a2, a3, a4, a5);
}
