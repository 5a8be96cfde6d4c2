/* The demo's "service": handles requests, each on its own connection, and on
 * one error path forgets to PQfinish. Run it under the shim (scripts/demo.sh)
 * and the report points at handle_request's early return. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static PGconn* checkout(const char* conninfo) {
  PGconn* conn = PQconnectdb(conninfo);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(conn));
    PQfinish(conn);
    exit(1);
  }
  return conn;
}

/* Every third request "fails validation" and returns without closing. */
static int handle_request(const char* conninfo, int id) {
  PGconn* conn = checkout(conninfo);
  if (id % 3 == 0) return -1; /* BUG: conn is never finished on this path */
  PGresult* res = PQexec(conn, "select 1");
  PQclear(res);
  PQfinish(conn);
  return 0;
}

int main(void) {
  const char* conninfo = getenv("CONNLEAK_TEST_PG_CONNINFO");
  if (!conninfo) conninfo = "";
  int failed = 0;
  for (int id = 1; id <= 9; ++id) failed += handle_request(conninfo, id) != 0;
  printf("served 9 requests, %d failed validation\n", failed);
  return 0;
}
