#pragma once
// Socket-level tracking: what the libc hooks in hooks_socket.cpp do once the
// hot-path check (socket_table.h) says an fd matters. A socket becomes a
// candidate at connect() (stacks captured there: that is where the program
// acquired it), a database connection once its first bytes say so (registry
// record, kSocket), and is released at the close of its last alias.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>

#include "collector/report/report_builder.h"

namespace connleak::shim::sock {

// After connect() returned 0 or EINPROGRESS on `fd` (errno is preserved).
// `caller` is the return address of the connect call: sockets libpq or the
// MySQL client open belong to a handle their own hooks already track.
void on_connect(int fd, const sockaddr* addr, socklen_t len, const void* caller);

// Bytes that a send/recv-family call on a watched fd transferred.
void on_data(int fd, bool sent, const void* buf, std::size_t n);
void on_data(int fd, bool sent, const iovec* iov, int iovcnt, std::size_t n);

// Before the real close of `fd` (has_conn(fd) is true).
void on_close(int fd, const char* fn);
// close_range(first, last, 0) / closefrom(first): every bound fd in the range.
void on_close_range(unsigned first, unsigned last);
// After dup/dup2/dup3/F_DUPFD made `newfd` an alias of `oldfd`.
void on_dup(int oldfd, int newfd);

// The report's view of a socket record.
HandleState socket_state(const ConnRecord& record);

}  // namespace connleak::shim::sock
