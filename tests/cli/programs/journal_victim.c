/* Opens three libpq connections, each from its own named function, closes the
 * second, says "ready", then ends the way argv[1] says: "wait" (until stdin
 * closes or a SIGKILL from the test), "abort", "segv", or "exit" (a normal
 * exit). The journal tests kill it and read what its journal kept. Each
 * PQconnectdb call carries a marker comment the tests look up to know its line.
 * Connection string: $CONNLEAK_TEST_PG_CONNINFO. */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static PGconn* checked(PGconn* c) {
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect failed: %s", PQerrorMessage(c));
    exit(3);
  }
  return c;
}

__attribute__((noinline)) PGconn* open_from_alpha(void) {
  return checked(PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"))); /* JOURNAL_ALPHA */
}

__attribute__((noinline)) PGconn* open_from_beta(void) {
  return checked(PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"))); /* JOURNAL_BETA */
}

__attribute__((noinline)) PGconn* open_from_gamma(void) {
  return checked(PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"))); /* JOURNAL_GAMMA */
}

int main(int argc, char** argv) {
  const char* how = argc > 1 ? argv[1] : "wait";
  PGconn* a = open_from_alpha();
  PGconn* b = open_from_beta();
  PGconn* c = open_from_gamma();
  PQfinish(b);
  printf("ready\n");
  fflush(stdout);
  if (strcmp(how, "abort") == 0) abort();
  if (strcmp(how, "segv") == 0) {
    volatile int* nowhere = NULL;
    *nowhere = 1;
  }
  if (strcmp(how, "wait") == 0)
    while (getchar() != EOF) {
    }
  (void)a;
  (void)c;
  return 0; /* "exit" and "wait": leaves with a and c open, a normal exit */
}
