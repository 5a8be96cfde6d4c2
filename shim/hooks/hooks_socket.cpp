// Interposed libc socket and descriptor calls, for drivers that speak the
// database wire protocol themselves (asyncpg, aiomysql, PyMySQL, ...).
//
// Every host I/O call passes through here, so each hook is: the real call,
// then one byte load from socket_table.h's array; only a descriptor connect()
// made a candidate goes further. The hooks and their real functions are
// declared once in libc_symbols.inc (libc_real.h).
#include <dlfcn.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdarg>

#include "shim/hooks/libc_real.h"
#include "shim/runtime/export.h"
#include "shim/runtime/own_fds.h"
#include "shim/runtime/runtime.h"
#include "shim/track/socket_table.h"
#include "shim/track/socket_track.h"
#include "shim/track/tracking.h"

namespace {

namespace sock = connleak::shim::sock;
using connleak::shim::no_throw;  // tracking allocates; nothing may unwind into libc's caller
namespace own = connleak::shim::own;

// The host is about to close or replace [first, last]: if one of the shim's
// own descriptors is in it, the shim lets go of it first (own_fds.h).
inline void before_host_closes(unsigned first, unsigned last) {
  // A vfork()/posix_spawn child (Python's subprocess with close_fds) closes
  // its own table's copies: ours in the parent stay open and ours.
  if (own::any_in(first, last) && !connleak::shim::in_vfork_child()) own::host_closing(first, last);
}

// A missing libc function (it cannot happen with glibc, but never crash).
template <typename R>
R missing() {
  errno = ENOSYS;
  return static_cast<R>(-1);
}

inline void after_send(int fd, const void* buf, ssize_t r) {
  if (r > 0 && sock::watched(fd, sock::kWatchSent))
    no_throw([&] { sock::on_data(fd, true, buf, static_cast<size_t>(r)); });
}
inline void after_recv(int fd, const void* buf, ssize_t r, int flags) {
  // MSG_PEEK'd bytes are read again by the next call: parse them then.
  if (r > 0 && !(flags & MSG_PEEK) && sock::watched(fd, sock::kWatchReceived))
    no_throw([&] { sock::on_data(fd, false, buf, static_cast<size_t>(r)); });
}
inline void after_vec(int fd, bool sent, const iovec* iov, int n, ssize_t r) {
  if (r > 0 && sock::watched(fd, sent ? sock::kWatchSent : sock::kWatchReceived))
    no_throw([&] { sock::on_data(fd, sent, iov, n, static_cast<size_t>(r)); });
}

// F_DUPFD and F_DUPFD_CLOEXEC alias a descriptor; every other command passes.
int fcntl_common(connleak::shim::libc::fcntl_fn fn, int fd, int cmd, va_list ap) {
  // Every fcntl argument is an int, a pointer or absent; reading it as a
  // pointer-sized integer and passing it on is what glibc itself does.
  unsigned long arg = va_arg(ap, unsigned long);
  if (!fn) return missing<int>();
  int r = fn(fd, cmd, arg);
  if (r >= 0 && (cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && sock::has_conn(fd))
    no_throw([&] { sock::on_dup(fd, r); });
  return r;
}

}  // namespace

CONNLEAK_EXPORT int connect(int fd, const sockaddr* addr, socklen_t len) {
  auto fn = CONNLEAK_LIBC_REAL(connect);
  if (!fn) return missing<int>();
  int r = fn(fd, addr, len);
  if (r == 0 || (r < 0 && errno == EINPROGRESS)) {
    const void* caller = __builtin_return_address(0);  // the hook's caller, not the lambda's
    no_throw([&] { sock::on_connect(fd, addr, len, caller); });
  }
  return r;
}

CONNLEAK_EXPORT int close(int fd) {
  // Before the real close: once the number is free another thread's connect
  // may get it.
  if (sock::has_conn(fd)) no_throw([&] { sock::on_close(fd, "close"); });
  own::HostCall not_while_the_shim_creates;  // own_fds.h: until the real call returned
  if (fd >= 0) before_host_closes(static_cast<unsigned>(fd), static_cast<unsigned>(fd));
  auto fn = CONNLEAK_LIBC_REAL(close);
  return fn ? fn(fd) : missing<int>();
}

CONNLEAK_EXPORT int close_range(unsigned first, unsigned last, int flags) {
  own::HostCall not_while_the_shim_creates;
  // CLOSE_RANGE_CLOEXEC (4) only marks descriptors; nothing is closed.
  if (!(flags & 4)) {
    no_throw([&] { sock::on_close_range(first, last); });
    before_host_closes(first, last);
  }
  auto fn = CONNLEAK_LIBC_REAL(close_range);
  return fn ? fn(first, last, flags) : missing<int>();
}

CONNLEAK_EXPORT void closefrom(int first) {
  own::HostCall not_while_the_shim_creates;
  if (first >= 0) {
    no_throw([&] { sock::on_close_range(static_cast<unsigned>(first), ~0u); });
    before_host_closes(static_cast<unsigned>(first), ~0u);
  }
  if (auto fn = CONNLEAK_LIBC_REAL(closefrom)) fn(first);
}

CONNLEAK_EXPORT int dup(int fd) {
  auto fn = CONNLEAK_LIBC_REAL(dup);
  if (!fn) return missing<int>();
  int r = fn(fd);
  if (r >= 0 && sock::has_conn(fd)) no_throw([&] { sock::on_dup(fd, r); });
  return r;
}

CONNLEAK_EXPORT int dup2(int fd, int target) {
  auto fn = CONNLEAK_LIBC_REAL(dup2);
  if (!fn) return missing<int>();
  own::HostCall not_while_the_shim_creates;
  if (target >= 0 && target != fd)
    before_host_closes(static_cast<unsigned>(target), static_cast<unsigned>(target));
  int r = fn(fd, target);
  if (r >= 0 && r != fd && (sock::has_conn(fd) || sock::has_conn(r)))
    no_throw([&] { sock::on_dup(fd, r); });
  return r;
}

CONNLEAK_EXPORT int dup3(int fd, int target, int flags) {
  auto fn = CONNLEAK_LIBC_REAL(dup3);
  if (!fn) return missing<int>();
  own::HostCall not_while_the_shim_creates;
  if (target >= 0 && target != fd)
    before_host_closes(static_cast<unsigned>(target), static_cast<unsigned>(target));
  int r = fn(fd, target, flags);
  if (r >= 0 && (sock::has_conn(fd) || sock::has_conn(r))) no_throw([&] { sock::on_dup(fd, r); });
  return r;
}

CONNLEAK_EXPORT int fcntl(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_common(CONNLEAK_LIBC_REAL(fcntl), fd, cmd, ap);
  va_end(ap);
  return r;
}

CONNLEAK_EXPORT int fcntl64(int fd, int cmd, ...) {
  va_list ap;
  va_start(ap, cmd);
  int r = fcntl_common(CONNLEAK_LIBC_REAL(fcntl64), fd, cmd, ap);
  va_end(ap);
  return r;
}

// The data hooks. Nearly every call is on a descriptor nobody watches (a file,
// a pipe, libpq's own socket, which its hooks already track), and there the
// hook is the `g_watch` byte check and a tail call to libc: no frame of ours,
// ~10 instructions. A watched descriptor (or a libc lacking the function)
// takes the out-of-line path that calls, then feeds the bytes to the parser.
// The byte is read before the call: it is set by connect() on a descriptor no
// other call can be using yet, and cleared only by the parser itself.
#define CONNLEAK_STRIP(...) __VA_ARGS__
#define CONNLEAK_IO_HOOK(name, bit, params, args, after_call)                          \
  namespace {                                                                          \
  __attribute__((noinline))                                                            \
  ssize_t name##_watched(connleak::shim::libc::name##_fn fn, CONNLEAK_STRIP params) {  \
    if (!fn) return missing<ssize_t>();                                                \
    ssize_t r = fn args;                                                               \
    after_call;                                                                        \
    return r;                                                                          \
  }                                                                                    \
  }                                                                                    \
  CONNLEAK_EXPORT ssize_t name params {                                                \
    auto fn = CONNLEAK_LIBC_REAL(name);                                                \
    if (__builtin_expect(fn != nullptr && !sock::watched(fd, bit), 1)) return fn args; \
    return name##_watched(fn, CONNLEAK_STRIP args);                                    \
  }

CONNLEAK_IO_HOOK(send, sock::kWatchSent, (int fd, const void* buf, size_t n, int flags),
                 (fd, buf, n, flags), after_send(fd, buf, r))
CONNLEAK_IO_HOOK(sendto, sock::kWatchSent,
                 (int fd, const void* buf, size_t n, int flags, const sockaddr* to,
                  socklen_t tolen),
                 (fd, buf, n, flags, to, tolen), after_send(fd, buf, r))
CONNLEAK_IO_HOOK(sendmsg, sock::kWatchSent, (int fd, const msghdr* msg, int flags),
                 (fd, msg, flags),
                 if (msg) after_vec(fd, true, msg->msg_iov, static_cast<int>(msg->msg_iovlen), r))
CONNLEAK_IO_HOOK(write, sock::kWatchSent, (int fd, const void* buf, size_t n), (fd, buf, n),
                 after_send(fd, buf, r))
CONNLEAK_IO_HOOK(writev, sock::kWatchSent, (int fd, const iovec* iov, int n), (fd, iov, n),
                 after_vec(fd, true, iov, n, r))
CONNLEAK_IO_HOOK(recv, sock::kWatchReceived, (int fd, void* buf, size_t n, int flags),
                 (fd, buf, n, flags), after_recv(fd, buf, r, flags))
CONNLEAK_IO_HOOK(recvfrom, sock::kWatchReceived,
                 (int fd, void* buf, size_t n, int flags, sockaddr* from, socklen_t* fromlen),
                 (fd, buf, n, flags, from, fromlen), after_recv(fd, buf, r, flags))
CONNLEAK_IO_HOOK(recvmsg, sock::kWatchReceived, (int fd, msghdr* msg, int flags), (fd, msg, flags),
                 if (msg && !(flags & MSG_PEEK))
                     after_vec(fd, false, msg->msg_iov, static_cast<int>(msg->msg_iovlen), r))
CONNLEAK_IO_HOOK(read, sock::kWatchReceived, (int fd, void* buf, size_t n), (fd, buf, n),
                 after_recv(fd, buf, r, 0))
CONNLEAK_IO_HOOK(readv, sock::kWatchReceived, (int fd, const iovec* iov, int n), (fd, iov, n),
                 after_vec(fd, false, iov, n, r))
// _FORTIFY_SOURCE builds call these when the buffer size is known at compile
// time; glibc's own versions go to the kernel without passing through read/recv.
CONNLEAK_IO_HOOK(__read_chk, sock::kWatchReceived, (int fd, void* buf, size_t n, size_t buflen),
                 (fd, buf, n, buflen), after_recv(fd, buf, r, 0))
CONNLEAK_IO_HOOK(__recv_chk, sock::kWatchReceived,
                 (int fd, void* buf, size_t n, size_t buflen, int flags),
                 (fd, buf, n, buflen, flags), after_recv(fd, buf, r, flags))
CONNLEAK_IO_HOOK(__recvfrom_chk, sock::kWatchReceived,
                 (int fd, void* buf, size_t n, size_t buflen, int flags, sockaddr* from,
                  socklen_t* fromlen),
                 (fd, buf, n, buflen, flags, from, fromlen), after_recv(fd, buf, r, flags))
