/* Opens three libpq connections, each from its own named function, closes the
 * second, says "ready", then ends the way argv[1] says: "wait" (until stdin
 * closes or a SIGKILL from the test), "abort", "segv", "exit" (a normal
 * exit), or "fork": a child opens one more connection and waits to be killed
 * while the parent exits normally; the parent prints "child <pid>" first. The journal tests kill it
 * and read what its journal kept. Each PQconnectdb call carries a marker comment the tests look up
 * to know its line. Connection string: $CONNLEAK_TEST_PG_CONNINFO. */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

__attribute__((noinline)) PGconn* open_from_child(void) {
  return checked(PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"))); /* JOURNAL_CHILD */
}

/* The child connects and tells the parent through a pipe (stdout is the test's),
 * then waits for its SIGKILL. */
static void fork_child_then_exit(void) {
  int ready[2];
  if (pipe(ready) != 0) exit(4);
  pid_t child = fork();
  if (child < 0) exit(4);
  if (child == 0) {
    PGconn* mine = open_from_child();
    (void)mine;
    if (write(ready[1], "r", 1) != 1) _exit(5);
    for (;;) pause();
  }
  char c;
  if (read(ready[0], &c, 1) != 1) exit(5);
  printf("child %d\n", (int)child);
  fflush(stdout);
}

int main(int argc, char** argv) {
  const char* how = argc > 1 ? argv[1] : "wait";
  PGconn* a = open_from_alpha();
  PGconn* b = open_from_beta();
  PGconn* c = open_from_gamma();
  PQfinish(b);
  printf("ready\n");
  fflush(stdout);
  if (strcmp(how, "fork") == 0) fork_child_then_exit();
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
