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
#include <initializer_list>

#include "collector/core/gate.h"

namespace connleak::shim::own {

enum Slot { kPipeRead, kPipeWrite, kListen, kClient, kExitWake, kSlots };

// Creating a descriptor: pipe2/socket/eventfd/accept4 put it at the lowest
// free number, a number the host may dup2() onto (or close) at any instant.
// Moving it up (F_DUPFD_CLOEXEC) and closing the low number is then a race:
// a host dup2 between our creation and our close would make us close the
// HOST's descriptor (and adopt its file as ours). Comparing the two numbers'
// files before closing (kcmp KCMP_FILE, fstat) only narrows the window, it
// cannot close it: the host's dup2 may land between the check and the close,
// and no system call closes "only if still that file". So creation runs in a
// window that the host's close/dup hooks cannot overlap (a Dekker handshake):
//  - the shim closes g_window, then waits until no host close/dup is between
//    its hook and the end of its real call (the gate is empty);
//  - each such hook passes the gate (HostCall): it counts itself in, and if
//    the gate is closed it counts itself out, waits until the window is over
//    and tries again.
// Sequentially consistent atomics guarantee that at least one side sees the
// other, so the temporary low number is created, moved up and closed while
// no host call can touch it. The window holds only non-blocking system calls
// (microseconds); the shim gives up after a bounded wait (a host thread
// blocked in close(), or a signal handler nested in an interrupted hook) and
// tries again on its next pass, so a host call never waits on anything but
// those few system calls.
//
// make(fds) makes one descriptor (fds[0]) or a pipe (fds[0], fds[1]) and
// returns 0, or -1; the descriptors become slots[0..n) above the floor.
// False when nothing was made (the slots are unchanged).
using MakeFn = int (*)(int* fds, void* ctx);
bool create(const Slot* slots, int n, MakeFn make, void* ctx);
template <typename Make>
bool create(std::initializer_list<Slot> slots, Make make) {
  return create(
      slots.begin(), static_cast<int>(slots.size()),
      [](int* fds, void* ctx) { return (*static_cast<Make*>(ctx))(fds); }, &make);
}
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
// create()'s window: the shim closes it while it creates; the host's
// close/dup calls pass through it between their hook and their end.
extern Gate g_window;
}  // namespace detail

// Host side of create()'s handshake: held by a close/close_range/closefrom/
// dup2/dup3 hook from before its checks until the real call returned. The
// same handshake as fork_gate::Walk, hence one Gate (collector/core/gate.h).
class HostCall : Gate::Pass {
 public:
  HostCall() : Gate::Pass(detail::g_window) {}
};

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
