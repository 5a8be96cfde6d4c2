/* Opens one libpq connection, says "ready", and holds it until stdin is
 * closed: a live process under the shim for `connleak dump`, synchronised on
 * the "ready" line rather than on a sleep. Connection string:
 * $CONNLEAK_TEST_PG_CONNINFO. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

__attribute__((noinline)) static PGconn* hold_this_connection(void) {
  PGconn* c = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO")); /* HOLD-OPEN */
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect failed: %s", PQerrorMessage(c));
    exit(3);
  }
  return c;
}

int main(void) {
  PGconn* c = hold_this_connection();
  printf("ready\n");
  fflush(stdout);
  while (getchar() != EOF) {
  }
  PQfinish(c);
  return 0;
}
