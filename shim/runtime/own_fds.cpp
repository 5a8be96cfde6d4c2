#include "shim/runtime/own_fds.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>

namespace connleak::shim::own {

namespace detail {
std::atomic<int> g_fd[kSlots] = {-1, -1, -1, -1, -1};
std::atomic<int> g_users{0};
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

}  // namespace

int adopt(Slot slot, int fd) {
  if (fd < 0) return -1;
  int high = fcntl(fd, F_DUPFD_CLOEXEC, floor_fd());
  if (high >= 0) {
    close(fd);  // not registered yet: the hook passes it through
    fd = high;
  } else {
    fcntl(fd, F_SETFD, FD_CLOEXEC);  // limit too low: keep the number we have
  }
  g_fd[slot].store(fd, std::memory_order_seq_cst);
  return fd;
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
}

}  // namespace connleak::shim::own
