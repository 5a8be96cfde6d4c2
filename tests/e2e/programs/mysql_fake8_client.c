/* A stand-in for MySQL 8's libmysqlclient, which Debian does not ship: just
 * enough of its non-blocking connect API (mysql_real_connect_nonblocking,
 * called again until it stops returning NET_ASYNC_NOT_READY) to run the shim's
 * hook for it. A connect to port 1 fails; others take three calls. */
#include <stdlib.h>

typedef struct st_mysql {
  int calls;
  unsigned long thread_id;
} MYSQL;

enum net_async_status { NET_ASYNC_COMPLETE = 0, NET_ASYNC_NOT_READY, NET_ASYNC_ERROR };

static unsigned long next_thread_id = 4242;

MYSQL* mysql_init(MYSQL* m) {
  if (!m) m = calloc(1, sizeof *m);
  return m;
}

enum net_async_status mysql_real_connect_nonblocking(MYSQL* m, const char* host, const char* user,
                                                     const char* passwd, const char* db,
                                                     unsigned int port, const char* unix_socket,
                                                     unsigned long flags) {
  (void)host, (void)user, (void)passwd, (void)db, (void)unix_socket, (void)flags;
  if (port == 1) return NET_ASYNC_ERROR;
  if (++m->calls < 3) return NET_ASYNC_NOT_READY;
  m->thread_id = next_thread_id++;
  return NET_ASYNC_COMPLETE;
}

unsigned long mysql_thread_id(MYSQL* m) {
  return m->thread_id;
}

void mysql_close(MYSQL* m) {
  free(m);
}
