/* Opens three libpq connections, each from its own named function, closes the
 * second, says "ready", then ends the way argv[1] says: "wait" (until stdin
 * closes or a SIGKILL from the test), "abort", "segv", "exit" (a normal
 * exit), or "fork": a child opens one more connection and waits to be killed
 * while the parent exits normally; the parent prints "child <pid>" first.
 * "abort_thread": a second thread aborts while a third connects and closes in
 * a loop. "hog": allocates and touches 512 MiB, says "hogging", and waits to be
 * killed (an OOM kill without a cgroup). "churn": 100,000 connection attempts
 * opened and closed (to a socket directory that does not exist, so no server
 * work) before "ready" and waiting. The journal tests kill it
 * and read what its journal kept. Each PQconnectdb call carries a marker comment the tests look up
 * to know its line. Connection string: $CONNLEAK_TEST_PG_CONNINFO. */
#include <libpq-fe.h>
#include <pthread.h>
#include <semaphore.h>
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

__attribute__((noinline)) PGconn* open_from_storm(void) {
  return PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
}

static sem_t g_storm_connected;

/* Connects and closes until the process dies; says once that it has connected. */
static void* storm(void* arg) {
  (void)arg;
  for (int n = 0;; ++n) {
    PQfinish(open_from_storm());
    if (n == 0) sem_post(&g_storm_connected);
  }
  return NULL;
}

/* Aborts only once the storm has connected at least once, so the abort lands
 * while connections are being opened and closed on another thread. */
static void* aborter(void* arg) {
  (void)arg;
  while (sem_wait(&g_storm_connected) != 0) {
  }
  abort();
  return NULL;
}

static void abort_from_a_second_thread(void) {
  pthread_t s, a;
  sem_init(&g_storm_connected, 0, 0);
  if (pthread_create(&s, NULL, storm, NULL) != 0 || pthread_create(&a, NULL, aborter, NULL) != 0)
    exit(6);
  pthread_join(a, NULL); /* never returns: the process aborts */
}

static void hog_memory(void) {
  enum { kChunk = 64 << 20, kChunks = 8 };
  for (int i = 0; i < kChunks; ++i) {
    char* p = malloc(kChunk);
    if (!p) break;
    memset(p, i + 1, kChunk); /* touched: resident, as a real hog's would be */
  }
  printf("hogging\n");
  fflush(stdout);
}

__attribute__((noinline)) PGconn* open_from_churn(void) {
  return PQconnectdb("host=/nonexistent-connleak-socket-dir port=1 connect_timeout=1");
}

static void churn(void) {
  for (int i = 0; i < 100000; ++i) PQfinish(open_from_churn());
}

int main(int argc, char** argv) {
  const char* how = argc > 1 ? argv[1] : "wait";
  PGconn* a = open_from_alpha();
  PGconn* b = open_from_beta();
  PGconn* c = open_from_gamma();
  PQfinish(b);
  if (strcmp(how, "churn") == 0) churn();
  printf("ready\n");
  fflush(stdout);
  if (strcmp(how, "fork") == 0) fork_child_then_exit();
  if (strcmp(how, "abort") == 0) abort();
  if (strcmp(how, "abort_thread") == 0) abort_from_a_second_thread();
  if (strcmp(how, "hog") == 0) hog_memory();
  if (strcmp(how, "segv") == 0) {
    volatile int* nowhere = NULL;
    *nowhere = 1;
  }
  if (strcmp(how, "wait") == 0 || strcmp(how, "hog") == 0 || strcmp(how, "churn") == 0)
    while (getchar() != EOF) {
    }
  (void)a;
  (void)c;
  return 0; /* "exit" and "wait": leaves with a and c open, a normal exit */
}
