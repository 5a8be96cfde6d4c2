/* Speaks PostgreSQL's protocol itself over three TCP connections (as Node's
 * `pg` does) and closes them the way libuv does, through syscall(2) rather
 * than the libc wrappers: one with SYS_close, one with SYS_close_range; the
 * third is kept open until exit (the leak). */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <unistd.h>

static void put32(unsigned char* p, uint32_t v) {
  v = htonl(v);
  memcpy(p, &v, 4);
}

/* StartupMessage for user/database "postgres" (trust on 127.0.0.1), then
 * reads until ReadyForQuery. Returns the descriptor, or -1. */
static int pg_session(void) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a;
  memset(&a, 0, sizeof a);
  a.sin_family = AF_INET;
  a.sin_port = htons((uint16_t)atoi(getenv("CONNLEAK_TEST_PG_PORT")));
  inet_pton(AF_INET, getenv("CONNLEAK_TEST_PG_HOST"), &a.sin_addr);
  if (connect(fd, (struct sockaddr*)&a, sizeof a) != 0) return -1;
  static const char params[] = "user\0postgres\0database\0postgres\0";
  unsigned char msg[8 + sizeof params];
  put32(msg, sizeof msg);
  put32(msg + 4, 196608); /* protocol 3.0 */
  memcpy(msg + 8, params, sizeof params);
  if (write(fd, msg, sizeof msg) != (ssize_t)sizeof msg) return -1;
  unsigned char buf[4096];
  for (;;) { /* the reply is small: ReadyForQuery ('Z', 5, status) ends it */
    ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) return -1;
    if (n >= 6 && buf[n - 6] == 'Z') return fd;
  }
}

__attribute__((noinline)) static int closed_with_sys_close(void) {
  int fd = pg_session();
  return fd < 0 ? -1 : (int)syscall(SYS_close, fd);
}

__attribute__((noinline)) static int closed_with_sys_close_range(void) {
  int fd = pg_session();
  return fd < 0 ? -1 : (int)syscall(SYS_close_range, fd, fd, 0);
}

static int g_kept = -1;
__attribute__((noinline)) static void kept_until_exit(void) {
  g_kept = pg_session();
}

int main(void) {
  int a = closed_with_sys_close();
  int b = closed_with_sys_close_range();
  kept_until_exit();
  /* errno and results must be the real call's: closing a closed fd fails. */
  long again = syscall(SYS_close, 1000);
  printf("sys_close=%d sys_close_range=%d kept=%d again=%ld\n", a, b, g_kept >= 0, again);
  return a == 0 && b == 0 && g_kept >= 0 && again == -1 ? 0 : 1;
}
