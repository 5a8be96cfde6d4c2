/* send() and recv() for bench_micro, ahead of libc in its lookup order (a
 * DT_NEEDED library of the executable): plain, the program's calls land here;
 * with LD_PRELOAD=libconnleak.so they land in the shim's hooks, whose
 * dlsym(RTLD_NEXT) finds these. Every call passes through to libc, except on
 * the one descriptor sock_stub_fake() names: there send() returns its length
 * without a system call and recv() hands back a canned reply (or, with none,
 * returns its length), so a benchmark times the hooks without the kernel's
 * loopback TCP, whose run-to-run spread is far larger than the hooks' cost.
 * The shim still sees exactly the bytes a real server exchange would give it. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>

typedef ssize_t (*send_fn)(int, const void*, size_t, int);
typedef ssize_t (*recv_fn)(int, void*, size_t, int);

static int g_fd = -1;
static const void* g_reply;
static size_t g_reply_len;
static send_fn g_send;
static recv_fn g_recv;

/* dlsym's object pointer as a function pointer, without ISO C's complaint. */
static void* next_symbol(const char* name, void* slot, size_t size) {
  void* sym = dlsym(RTLD_NEXT, name);
  memcpy(slot, &sym, size);
  return sym;
}

void sock_stub_fake(int fd, const void* reply, size_t reply_len) {
  g_fd = fd;
  g_reply = reply;
  g_reply_len = reply_len;
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
  if (fd == g_fd && fd >= 0) {
    __asm__ volatile("" ::: "memory");
    return (ssize_t)n;
  }
  if (!g_send && !next_symbol("send", &g_send, sizeof g_send)) {
    errno = ENOSYS;
    return -1;
  }
  return g_send(fd, buf, n, flags);
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
  if (fd == g_fd && fd >= 0) {
    if (!g_reply) {
      __asm__ volatile("" ::: "memory");
      return (ssize_t)n;
    }
    size_t k = g_reply_len < n ? g_reply_len : n;
    memcpy(buf, g_reply, k);
    return (ssize_t)k;
  }
  if (!g_recv && !next_symbol("recv", &g_recv, sizeof g_recv)) {
    errno = ENOSYS;
    return -1;
  }
  return g_recv(fd, buf, n, flags);
}
