/* One process, both client libraries: a libpq connection and a MySQL one
 * leaked, one of each closed. Servers: $CONNLEAK_TEST_PG_CONNINFO and
 * $CONNLEAK_TEST_MYSQL_*. */
#include <libpq-fe.h>
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>

#define NOINLINE __attribute__((noinline))

static const char* env(const char* name) {
  const char* v = getenv(name);
  if (!v) {
    fprintf(stderr, "%s is not set\n", name);
    exit(2);
  }
  return v;
}

static PGconn* pg_connect(void) {
  PGconn* c = PQconnectdb(env("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "pg connect: %s", PQerrorMessage(c));
    exit(3);
  }
  return c;
}

static MYSQL* my_connect(void) {
  MYSQL* m = mysql_init(NULL);
  if (!mysql_real_connect(m, env("CONNLEAK_TEST_MYSQL_HOST"), env("CONNLEAK_TEST_MYSQL_USER"),
                          env("CONNLEAK_TEST_MYSQL_PASSWORD"), env("CONNLEAK_TEST_MYSQL_DB"),
                          (unsigned)atoi(env("CONNLEAK_TEST_MYSQL_PORT")), NULL, 0)) {
    fprintf(stderr, "mysql connect: %s\n", mysql_error(m));
    exit(3);
  }
  return m;
}

NOINLINE static void leak_pg(void) {
  pg_connect();
}
NOINLINE static void leak_mysql(void) {
  my_connect();
}

int main(void) {
  leak_pg();
  leak_mysql();
  PQfinish(pg_connect());
  mysql_close(my_connect());
  return 0;
}
