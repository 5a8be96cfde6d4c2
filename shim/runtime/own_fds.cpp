#include "shim/runtime/own_fds.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>

namespace connleak::shim::own {

namespace detail {
std::atomic<int> g_fd[kSlots] = {-1, -1, -1, -1, -1};
std::atomic<int> g_users{0};
constinit Gate g_window;
}  // namespace detail

namespace {

using detail::g_fd;
using detail::g_users;

std::atomic<bool> g_host_closed{false};

// Just under the soft descriptor limit, capped at 1024: far above what a
// host's open() returns in practice, without making the kernel grow the
// descriptor table of a process whose limit is a million.
int floor_fd() {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return 3;
  rlim_t soft = std::min<rlim_t>(lim.rlim_cur, 1024);
  return soft > 64 ? static_cast<int>(soft) - 24 : 3;
}

// Enters the creation window (own_fds.h), or gives up after a bounded wait.
bool enter_window() {
  detail::g_window.close();
  for (int i = 0; i < 2000; ++i) {
    if (detail::g_window.empty()) return true;
    sched_yield();
  }
  detail::g_window.open();
  return false;
}

}  // namespace

bool create(const Slot* slots, int n, MakeFn make, void* ctx) {
  if (n < 1 || n > 2) return false;
  const int floor = floor_fd();
  if (!enter_window()) return false;
  int fds[2] = {-1, -1};
  const bool made = make(fds, ctx) == 0;
  if (made) {
    for (int i = 0; i < n; ++i) {
      int high = fcntl(fds[i], F_DUPFD_CLOEXEC, floor);
      if (high >= 0) {
        // The raw system call: libc's close is our own hook, which would wait
        // for this very window to end.
        syscall(SYS_close, fds[i]);
        fds[i] = high;
      } else {
        fcntl(fds[i], F_SETFD, FD_CLOEXEC);  // limit too low: keep the number we have
      }
    }
    // Registered before the window ends: from then on the host's hooks see them.
    for (int i = 0; i < n; ++i) g_fd[slots[i]].store(fds[i], std::memory_order_seq_cst);
  }
  detail::g_window.open();
  return made;
}

void release(Slot slot) {
  int fd = g_fd[slot].exchange(-1, std::memory_order_seq_cst);
  // Wait out a use in flight (the signal handler's write) before the number
  // can be handed to the host by the close below.
  while (g_users.load(std::memory_order_seq_cst) != 0) sched_yield();
  if (fd >= 0) close(fd);
}

int peek(Slot slot) {
  return g_fd[slot].load(std::memory_order_relaxed);
}

bool take_host_closed() {
  return g_host_closed.load(std::memory_order_relaxed) && g_host_closed.exchange(false);
}

void host_closing(unsigned first, unsigned last) {
  bool any = false;
  for (std::atomic<int>& slot : g_fd) {
    int fd = slot.load(std::memory_order_seq_cst);
    if (fd < 0 || static_cast<unsigned>(fd) < first || static_cast<unsigned>(fd) > last) continue;
    if (slot.compare_exchange_strong(fd, -1, std::memory_order_seq_cst)) any = true;
  }
  if (!any) return;
  g_host_closed.store(true, std::memory_order_seq_cst);
  // A use that loaded the number before we cleared it is a single
  // non-blocking system call; once it is done the number is the host's.
  while (g_users.load(std::memory_order_seq_cst) != 0) sched_yield();
}

void after_fork_child() {
  g_users.store(0, std::memory_order_relaxed);
  // Whoever was creating or closing in the parent is not running here.
  detail::g_window.reset_in_child();
}

}  // namespace connleak::shim::own
