/* A libpq host for the hostile-input tests (issue 20), driven line by line on
 * stdin so tests synchronise on its answers, never on sleeps. Each line is
 * raw bytes: a Latin-1 dbname or a password holding '@' goes through as is.
 *   leak                    open a connection to CONNLEAK_TEST_PG_CONNINFO, keep it
 *   connect CONNINFO        PQconnectdb(CONNINFO); kept, finished or not
 *   start CONNINFO          PQconnectStart(CONNINFO); never polled, never finished
 *   params DBNAME USER      PQconnectdbParams with the test server's host and port
 *   exit N | _exit N        leave through exit() or _exit()
 * Each command answers "ok <command>" on stdout. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

NOINLINE static PGconn* open_hostile_connection(const char* conninfo) {
  return PQconnectdb(conninfo);
}

NOINLINE static PGconn* start_hostile_connection(const char* conninfo) {
  return PQconnectStart(conninfo);
}

NOINLINE static PGconn* open_with_params(const char* dbname, const char* user) {
  const char* keys[] = {"host", "port", "dbname", "user", "password", NULL};
  const char* vals[] = {getenv("CONNLEAK_TEST_PG_HOST"),
                        getenv("CONNLEAK_TEST_PG_PORT"),
                        dbname,
                        user,
                        "not-the-password",
                        NULL};
  return PQconnectdbParams(keys, vals, 0);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[4096];
  while (fgets(line, sizeof line, stdin)) {
    line[strcspn(line, "\n")] = '\0';
    char* arg = strchr(line, ' ');
    if (arg) *arg++ = '\0';
    if (!strcmp(line, "leak")) {
      PGconn* c = open_hostile_connection(getenv("CONNLEAK_TEST_PG_CONNINFO"));
      if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "connect failed: %s", PQerrorMessage(c));
        return 3;
      }
    } else if (!strcmp(line, "connect") && arg) {
      PGconn* c = open_hostile_connection(arg);
      printf("status %s\n", PQstatus(c) == CONNECTION_OK ? "connected" : "failed");
    } else if (!strcmp(line, "start") && arg) {
      start_hostile_connection(arg);
    } else if (!strcmp(line, "params") && arg) {
      char* user = strchr(arg, ' ');
      if (user) *user++ = '\0';
      PGconn* c = open_with_params(arg, user ? user : "");
      printf("status %s\n", PQstatus(c) == CONNECTION_OK ? "connected" : "failed");
    } else if (!strcmp(line, "exit") && arg) {
      printf("ok exit\n");
      exit(atoi(arg));
    } else if (!strcmp(line, "_exit") && arg) {
      printf("ok _exit\n");
      _exit(atoi(arg));
    } else {
      fprintf(stderr, "unknown command %s\n", line);
      return 2;
    }
    printf("ok %s\n", line);
  }
  return 0;
}
