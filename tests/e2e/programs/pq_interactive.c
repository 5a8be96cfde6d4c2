/* A long-running libpq program driven line by line on stdin, so tests can
 * synchronise on what connleak prints instead of sleeping:
 *   open I | open_elsewhere I | begin I | query I | commit I | close I | ignore I | dump
 *   install_usr2 | fork_child | exit
 *   secrets I (password-bearing statements) | prepared I | pipeline I | sendlong I (BEGIN, then a
 * query left running) Each command answers "ok <command>" on stdout (handles as "handle I 0x...").
 */
#define _GNU_SOURCE
#include <connleak/connleak.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))
enum { kMax = 16 };
static PGconn* conns[kMax];

NOINLINE static PGconn* open_connection_for_test(void) {
  PGconn* c = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(c) != CONNECTION_OK) {
    fprintf(stderr, "connect failed: %s", PQerrorMessage(c));
    exit(3);
  }
  return c;
}

static void exec_ok(PGconn* c, const char* sql) {
  PGresult* r = PQexec(c, sql);
  if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "%s failed: %s", sql, PQerrorMessage(c));
    exit(4);
  }
  PQclear(r);
}

NOINLINE static void open_connection_in_child(void) {
  open_connection_for_test();
}

/* A second acquisition site, for tests that tell two sites apart. */
NOINLINE static PGconn* open_from_elsewhere(void) {
  PGconn* c = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(c) != CONNECTION_OK) exit(3);
  return c;
}

NOINLINE static void begin_transaction_here(PGconn* c) {
  exec_ok(c, "BEGIN");
}

static void on_usr2(int sig) {
  (void)sig;
  static const char msg[] = "app got USR2\n";
  ssize_t n = write(1, msg, sizeof msg - 1);
  (void)n;
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[64] = "";
    int i = 0;
    sscanf(line, "%63s %d", cmd, &i);
    if (i < 0 || i >= kMax) return 2;
    if (!strcmp(cmd, "open")) {
      conns[i] = open_connection_for_test();
      printf("handle %d %p\n", i, (void*)conns[i]);
    } else if (!strcmp(cmd, "open_elsewhere")) {
      conns[i] = open_from_elsewhere();
      printf("handle %d %p\n", i, (void*)conns[i]);
    } else if (!strcmp(cmd, "begin")) {
      begin_transaction_here(conns[i]);
      exec_ok(conns[i], "select 1");
    } else if (!strcmp(cmd, "query")) {
      exec_ok(conns[i], "select 1");
    } else if (!strcmp(cmd, "secrets")) {
      /* Statements whose literals are secrets: they must appear in no output. */
      PQclear(PQexec(conns[i], "ALTER ROLE nobody_at_all PASSWORD 'hunter2-pq'"));
      PQclear(PQexec(conns[i], "SELECT pgp_sym_encrypt('data', 'hunter2-key')"));
      PQclear(PQexec(conns[i], "COPY t FROM PROGRAM 'echo hunter2-prog'"));
      exec_ok(conns[i], "SELECT * FROM pg_roles WHERE rolname = 'hunter2-where' AND oid > 42");
    } else if (!strcmp(cmd, "prepared")) {
      PQclear(PQprepare(conns[i], "by_name", "SELECT $1::int + 7 AS v, 'hunter2-prep'", 1, NULL));
      const char* v[1] = {"35"};
      PGresult* r = PQexecPrepared(conns[i], "by_name", 1, v, NULL, NULL, 0);
      if (PQresultStatus(r) != PGRES_TUPLES_OK) return 7;
      PQclear(r);
    } else if (!strcmp(cmd, "pipeline")) {
      if (!PQenterPipelineMode(conns[i])) return 8;
      PQsendQueryParams(conns[i], "SELECT 1 AS one", 0, NULL, NULL, NULL, NULL, 0);
      PQsendQueryParams(conns[i], "SELECT 'hunter2-pipe' AS two", 0, NULL, NULL, NULL, NULL, 0);
      PQpipelineSync(conns[i]);
      for (int k = 0; k < 2; ++k) {
        PGresult* r;
        while ((r = PQgetResult(conns[i])) != NULL) PQclear(r);
      }
      PGresult* sync = PQgetResult(conns[i]);
      if (PQresultStatus(sync) != PGRES_PIPELINE_SYNC) return 9;
      PQclear(sync);
      if (!PQexitPipelineMode(conns[i])) return 10;
    } else if (!strcmp(cmd, "sendlong")) {
      exec_ok(conns[i], "BEGIN");
      if (!PQsendQuery(conns[i], "SELECT pg_sleep(30)")) return 11;
    } else if (!strcmp(cmd, "commit")) {
      exec_ok(conns[i], "COMMIT");
    } else if (!strcmp(cmd, "close")) {
      PQfinish(conns[i]);
    } else if (!strcmp(cmd, "ignore")) {
      if (CONNLEAK_IGNORE(conns[i]) != 0) return 5;
    } else if (!strcmp(cmd, "dump")) {
      if (CONNLEAK_DUMP() != 0) return 6;
    } else if (!strcmp(cmd, "install_usr2")) {
      signal(SIGUSR2, on_usr2);
    } else if (!strcmp(cmd, "fork_child")) {
      pid_t child = fork();
      if (child == 0) { /* inherits every open connection, leaks one of its own */
        open_connection_in_child();
        exit(0);
      }
      int status = 0;
      waitpid(child, &status, 0);
      printf("child %d\n", (int)child);
    } else if (!strcmp(cmd, "exit")) {
      printf("ok exit\n");
      return 0;
    } else {
      fprintf(stderr, "unknown command %s\n", cmd);
      return 2;
    }
    printf("ok %s %d\n", cmd, i);
  }
  return 0;
}
