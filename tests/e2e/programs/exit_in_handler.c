/* Issue 20, item 2: a SIGALRM handler calls _exit(42) while the main thread
 * is inside malloc/free, as a program with a watchdog alarm does. _exit is
 * async-signal-safe: under the shim the process must still leave with 42
 * instead of deadlocking on malloc's lock in the exit report. */
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <unistd.h>

static void on_alarm(int sig) {
  (void)sig;
  _exit(42);
}

int main(void) {
  /* A leaked connection: the exit report has something to say. */
  PGconn* c = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect failed: %s", PQerrorMessage(c));
    return 3;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_alarm;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGALRM, &sa, NULL);
  /* The alarm is the event under test, not a synchronisation: whenever it
   * fires, the main thread is almost surely inside malloc or free. */
  struct itimerval t = {{0, 0}, {0, 20000}};
  setitimer(ITIMER_REAL, &t, NULL);
  volatile unsigned long sink = 0;
  for (unsigned long i = 0;; ++i) {
    char* p = malloc(16 + (i % 4096));
    p[0] = (char)i;
    sink += (unsigned char)p[0];
    free(p);
  }
}
