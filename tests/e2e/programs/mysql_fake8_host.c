/* Drives the MySQL 8 non-blocking connect of mysql_fake8_client.c: one
 * connection leaked, one closed, one failed and leaked. */
#include <stdio.h>

#define NOINLINE __attribute__((noinline))

typedef struct st_mysql MYSQL;
enum net_async_status { NET_ASYNC_COMPLETE = 0, NET_ASYNC_NOT_READY, NET_ASYNC_ERROR };
MYSQL* mysql_init(MYSQL*);
enum net_async_status mysql_real_connect_nonblocking(MYSQL*, const char*, const char*, const char*,
                                                     const char*, unsigned int, const char*,
                                                     unsigned long);
unsigned long mysql_thread_id(MYSQL*);
void mysql_close(MYSQL*);

static enum net_async_status connect_nb(MYSQL* m, unsigned port) {
  enum net_async_status st;
  while ((st = mysql_real_connect_nonblocking(m, "127.0.0.1", "u", "Fake8-secret", "d", port, NULL,
                                              0)) == NET_ASYNC_NOT_READY) {
  }
  return st;
}

NOINLINE static MYSQL* nonblocking_leak(void) {
  MYSQL* m = mysql_init(NULL);
  if (connect_nb(m, 3306) != NET_ASYNC_COMPLETE) return NULL;
  return m;
}

NOINLINE static void nonblocking_failed_leak(void) {
  MYSQL* m = mysql_init(NULL);
  if (connect_nb(m, 1) != NET_ASYNC_ERROR) fprintf(stderr, "expected a failure\n");
}

int main(void) {
  MYSQL* leaked = nonblocking_leak();
  if (!leaked) return 3;
  printf("fake_thread_id=%lu\n", mysql_thread_id(leaked));
  MYSQL* other = nonblocking_leak();
  if (!other) return 3;
  mysql_close(other);
  nonblocking_failed_leak();
  return 0;
}
