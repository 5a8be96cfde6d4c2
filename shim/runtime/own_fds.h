#pragma once
// The shim's own descriptors (the dump signal's pipe, the control socket, a
// `connleak dump` client being served, the eventfd an _exit hook wakes the
// thread with), kept apart from the host's.
//
// A host may close every descriptor it did not open itself (closefrom(3),
// close_range, a daemon's "close all fds" loop) and then open its own: they
// get the freed numbers. If the shim kept using a number it once owned, its
// thread would read the host's data and write dump bytes into the host's
// socket. So:
//  - our descriptors live above a floor (F_DUPFD_CLOEXEC), where the host's
//    next open() does not land;
//  - the host's close/close_range/closefrom/dup2/dup3 hooks call host_closing()
//    BEFORE the real call: a slot in the range is marked dead, and the hook
//    waits until no use of it is in flight. The host's call then proceeds
//    unchanged; the number is the host's from then on and is never touched
//    again (not even closed) by the shim;
//  - every use of one of our descriptors goes through use(), which sees the
//    slot dead and does nothing. The thread re-creates what died.
// use() is lock-free and async-signal-safe (the dump signal handler uses it);
// each use is one non-blocking system call, so host_closing() waits
// microseconds at most. Descriptors closed behind libc's back (a raw close
// syscall) are not seen: the floor is what protects against those.
#include <atomic>

namespace connleak::shim::own {

enum Slot { kPipeRead, kPipeWrite, kListen, kClient, kExitWake, kSlots };

// Moves `fd` above the floor (the original number is closed) and makes it
// `slot`'s descriptor. Returns the number now in use, or -1 (fd closed).
int adopt(Slot slot, int fd);
// Forgets `slot`'s descriptor and closes it, if it is still ours.
void release(Slot slot);
// The slot's current number, or -1: for poll() only, where a stale number
// costs a spurious wake-up at worst. Never read or write through it.
int peek(Slot slot);
// True once since the host last closed one of our descriptors.
bool take_host_closed();

namespace detail {
extern std::atomic<int> g_fd[kSlots];
extern std::atomic<int> g_users;
}  // namespace detail

// Runs fn(fd) while `slot`'s descriptor is ours, else returns `dead`.
template <typename R, typename Fn>
R use(Slot slot, R dead, Fn fn) {
  detail::g_users.fetch_add(1, std::memory_order_seq_cst);
  int fd = detail::g_fd[slot].load(std::memory_order_seq_cst);
  R r = fd >= 0 ? fn(fd) : dead;
  detail::g_users.fetch_sub(1, std::memory_order_seq_cst);
  return r;
}

// Hook side: the host is about to close (or dup over) [first, last].
inline bool any_in(unsigned first, unsigned last) {
  for (const std::atomic<int>& slot : detail::g_fd) {
    int fd = slot.load(std::memory_order_relaxed);
    if (fd >= 0 && static_cast<unsigned>(fd) >= first && static_cast<unsigned>(fd) <= last)
      return true;
  }
  return false;
}
void host_closing(unsigned first, unsigned last);

// In a fork child: no use can be in flight there (its thread is gone).
void after_fork_child();

}  // namespace connleak::shim::own
