/* A module loaded with dlopen(RTLD_NOW | RTLD_DEEPBIND) by deepbind_host.c, as
 * PHP loads its extensions: its calls to libpq and libmariadb (and theirs to
 * libc) bind without the preload, unless the shim rewrites their GOT. */
#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

static PGconn* pq_open(const char* conninfo) {
  PGconn* c = PQconnectdb(conninfo);
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "pq: %s", PQerrorMessage(c));
    exit(3);
  }
  PGresult* r = PQexec(c, "SELECT 41 + 1");
  printf("pq value=%s\n", PQgetvalue(r, 0, 0));
  PQclear(r);
  return c;
}

/* Opened and finished: not a leak. */
NOINLINE int deep_pq_closed(const char* conninfo) {
  PQfinish(pq_open(conninfo));
  return 0;
}

static PGconn* g_kept;

/* Kept until exit, never finished: the one leak. */
NOINLINE int deep_pq_kept(const char* conninfo) {
  g_kept = pq_open(conninfo);
  return 0;
}

NOINLINE int deep_mysql_closed(const char* host, const char* user, const char* password,
                               const char* db, unsigned port) {
  MYSQL* m = mysql_init(NULL);
  if (!mysql_real_connect(m, host, user, password, db, port, NULL, 0)) {
    fprintf(stderr, "mysql: %s\n", mysql_error(m));
    exit(4);
  }
  if (mysql_query(m, "SELECT 41 + 1") == 0) {
    MYSQL_RES* res = mysql_store_result(m);
    MYSQL_ROW row = mysql_fetch_row(res);
    printf("mysql value=%s\n", row[0]);
    mysql_free_result(res);
  }
  mysql_close(m);
  return 0;
}
