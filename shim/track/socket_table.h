#pragma once
// File descriptor -> socket conversation, for drivers that speak the database
// wire protocol themselves. The read/write hooks run on every I/O call of the
// host, so the question "is this fd one we watch?" must be one load from a
// constant-initialized array: a zero byte in `watch` means pass straight
// through. Everything else (the conversation, its registry record) hangs off a
// type-stable pool slot that several fds share after dup().
#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "collector/core/stack_depot.h"
#include "collector/util/timeutil.h"
#include "collector/wire/wire_protocol.h"

namespace connleak::shim::sock {

// fds at or above this are passed through untracked (said once in the log).
inline constexpr int kMaxFds = 1 << 16;

enum WatchBits : std::uint8_t { kWatchSent = 1, kWatchReceived = 2 };

// Hot-path tables: zero-initialized, never freed.
extern std::atomic<std::uint8_t> g_watch[kMaxFds];
extern std::atomic<std::uint32_t> g_conn_of[kMaxFds];  // pool index + 1; 0 = none

inline bool watched(int fd, std::uint8_t bit) {
  return static_cast<unsigned>(fd) < static_cast<unsigned>(kMaxFds) &&
         (g_watch[fd].load(std::memory_order_relaxed) & bit) != 0;
}
inline bool has_conn(int fd) {
  return static_cast<unsigned>(fd) < static_cast<unsigned>(kMaxFds) &&
         g_conn_of[fd].load(std::memory_order_relaxed) != 0;
}

// One client socket from connect() to its last close, whatever fds alias it.
struct SockConn {
  std::atomic<std::uint32_t> refs{0};       // fds pointing here; freed at zero
  std::atomic<bool> busy{false};            // serialises feeding `conv`
  std::atomic<std::uint64_t> record_id{0};  // registry record once a database; 0 before
  // wire::Blind: once kLost, the conversation is no longer fed (hot path).
  // Why the transaction state is unknown is the record's (SocketPart).
  std::atomic<std::uint8_t> blind{0};
  // Stacks of the last command sent outside a transaction that may begin one:
  // the transaction's start, once the server confirms it.
  std::atomic<StackId> begin_stack{0};
  std::atomic<StackId> begin_py_stack{0};
  // Where the client said goodbye (Terminate / COM_QUIT), if it did: the
  // close's stacks, and whether a finalizer sent it.
  std::atomic<bool> closing{false};
  std::atomic<bool> closing_by_finalizer{false};
  std::atomic<StackId> closing_stack{0};
  std::atomic<StackId> closing_py_stack{0};
  std::uint32_t index = 0;  // own pool index (stable)
  wire::Conversation conv;  // guarded by `busy`
  // What connect() saw, for a socket not yet known to be a database (most
  // sockets never are, so no record is made for them): moved into the
  // registry record when the first bytes say it is one, and cleared then, so
  // the record is the only holder of these facts.
  struct Candidate {
    Timestamp opened;
    StackId stack = 0;
    StackId py_stack = 0;
    int thread = 0;
    int fd = -1;              // the fd it was connected on
    const char* target = "";  // interned "tcp 127.0.0.1:5432" / "unix /path"
  } candidate;
  SockConn* next_free = nullptr;
};

// Registry key of a socket record: outside any user-space pointer range, so it
// never collides with a libpq or MySQL handle address.
inline std::uintptr_t key_of(std::uint32_t index) {
  return (std::uintptr_t{0xC0} << 56) | (std::uintptr_t{index} << 4);
}
// The pool slot a key names, or null if `key` is not a socket key.
SockConn* conn_of_key(std::uintptr_t key);

SockConn* conn_at(std::uint32_t index);
// A fresh slot with refs = 1, or null when the pool is exhausted.
SockConn* conn_alloc();
// Drops one fd's reference; true if it was the last (the caller then records
// the close and calls conn_free).
bool conn_release(SockConn* conn);
void conn_free(SockConn* conn);

// Points `fd` at `conn`; the caller holds the reference it stands for (the
// one conn_alloc returned, or one it added for an alias) and has released
// any previous binding of `fd`.
void bind_fd(int fd, SockConn* conn, std::uint8_t watch_bits);
// Unbinds `fd`; returns the conversation it pointed at (reference not yet
// dropped) or null.
SockConn* unbind_fd(int fd);
// Highest fd ever bound (bounds close_range/closefrom loops).
int high_water();

// In a fork child (the pool's ForkMutex already re-initialised): forgets the
// parent's sockets (its inherited fds belong to the parent's records, which
// the registry marks inherited).
void after_fork_child();

}  // namespace connleak::shim::sock
