/* A pool written in C, driven line by line on stdin, calling connleak's pool
 * checkout API with real libpq connections as keys (what python/connleak's
 * adapters do through ctypes). Commands:
 *   pool MAX            register the pool ("c.TestPool")
 *   open I              open connection I and adopt it into the pool
 *   clean I             a request that checks connection I out and returns it
 *   leak I              leaky_request(): checks I out, never returns it
 *   hold_a I | hold_b I hold_device_a()/hold_device_b(): check I out and keep it
 *   begin I | commit I  a transaction on connection I
 *   query I             a statement with literals on connection I (redaction tests)
 *   return I            return the checkout of I
 *   reclaim I           the checkout of I ends reclaimed (a finalizer got it)
 *   exhausted           the pool ran dry: connleak_pool_exhausted
 *   refuse N            open connections until the server refuses one (at most N)
 *   exit
 * Each command prints what it got, then "ok <command> <I>" on stdout. Commands given as
 * arguments ("open 0") run first, then stdin is read. */
#define _GNU_SOURCE
#include <connleak/connleak.h>
#include <libpq-fe.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NOINLINE __attribute__((noinline))
enum { kMax = 16 };
static PGconn* conns[kMax];
static unsigned long long checkouts[kMax];
static unsigned long long pool;

static PGconn* connect_or_die(void) {
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

static unsigned long long take(int i) {
  return connleak_checkout(pool, CONNLEAK_KEY_HANDLE, (unsigned long long)(unsigned long)conns[i],
                           NULL);
}

NOINLINE static void clean_request(int i) {
  unsigned long long id = take(i);
  exec_ok(conns[i], "SELECT 1");
  connleak_checkin(id, CONNLEAK_RETURNED);
}

NOINLINE static void leaky_request(int i) {
  checkouts[i] = take(i); /* leaky_request takes */
}
NOINLINE static void hold_device_a(int i) {
  checkouts[i] = take(i); /* hold_device_a takes */
}
NOINLINE static void hold_device_b(int i) {
  checkouts[i] = take(i); /* hold_device_b takes */
}

/* Opens connections until one fails; prints how many were open. */
NOINLINE static void open_until_refused(int n) {
  PGconn* extra[64];
  int opened = 0;
  for (; opened < n && opened < 64; ++opened) {
    extra[opened] = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
    if (PQstatus(extra[opened]) != CONNECTION_OK) break;
  }
  printf("refuse opened %d%s\n", opened, opened < n ? " refused" : "");
  for (int i = 0; i <= opened && i < 64 && i < n; ++i) PQfinish(extra[i]);
}

/* The same through the non-blocking API (PQconnectStart + PQconnectPoll, as
 * psycopg 3 connects): the refusal arrives during a poll. */
NOINLINE static void open_until_refused_async(int n) {
  PGconn* extra[64];
  int opened = 0;
  for (; opened < n && opened < 64; ++opened) {
    PGconn* c = extra[opened] = PQconnectStart(getenv("CONNLEAK_TEST_PG_CONNINFO"));
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (c && PQstatus(c) != CONNECTION_BAD && st != PGRES_POLLING_OK &&
           st != PGRES_POLLING_FAILED) {
      struct pollfd p = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
      if (poll(&p, 1, 10000) <= 0) break;
      st = PQconnectPoll(c);
    }
    if (PQstatus(c) != CONNECTION_OK) break;
  }
  printf("refuse_async opened %d%s\n", opened, opened < n ? " refused" : "");
  for (int i = 0; i <= opened && i < 64 && i < n; ++i) PQfinish(extra[i]);
}

/* One command; 0 to go on, 1 for exit. */
static int run_command(const char* line) {
  char cmd[64] = "";
  int i = 0;
  if (sscanf(line, "%63s %d", cmd, &i) < 1) return 0;
  if (i < 0 || i >= kMax) i = 0;
  if (!strcmp(cmd, "pool")) {
    pool = connleak_pool_register("c.TestPool",
                                  "c#1 host=127.0.0.1 user=app password=hunter2 dbname=connleak",
                                  "postgresql://app@127.0.0.1/connleak", i);
    printf("pool id %llu\n", pool);
  } else if (!strcmp(cmd, "open")) {
    conns[i] = connect_or_die();
    printf("open %d adopt %d\n", i,
           connleak_pool_adopt(pool, CONNLEAK_KEY_HANDLE,
                               (unsigned long long)(unsigned long)conns[i]));
  } else if (!strcmp(cmd, "clean")) {
    clean_request(i);

  } else if (!strcmp(cmd, "leak")) {
    leaky_request(i);
    printf("checkout %llu\n", checkouts[i]);
  } else if (!strcmp(cmd, "hold_a")) {
    hold_device_a(i);
    printf("checkout %llu\n", checkouts[i]);
  } else if (!strcmp(cmd, "hold_b")) {
    hold_device_b(i);
    printf("checkout %llu\n", checkouts[i]);
  } else if (!strcmp(cmd, "begin")) {
    exec_ok(conns[i], "BEGIN");

  } else if (!strcmp(cmd, "query")) {
    exec_ok(conns[i], "SELECT 'picture-literal-4242' AS secret WHERE 4242 = 4242");

  } else if (!strcmp(cmd, "commit")) {
    exec_ok(conns[i], "COMMIT");

  } else if (!strcmp(cmd, "return")) {
    printf("return -> %d\n", connleak_checkin(checkouts[i], CONNLEAK_RETURNED));
  } else if (!strcmp(cmd, "reclaim")) {
    printf("reclaim -> %d\n", connleak_checkin(checkouts[i], CONNLEAK_RECLAIMED));
  } else if (!strcmp(cmd, "exhausted")) {
    printf("exhausted -> %d\n", connleak_pool_exhausted(pool, 2.5));
  } else if (!strcmp(cmd, "refuse")) {
    open_until_refused(i);
  } else if (!strcmp(cmd, "refuse_async")) {
    open_until_refused_async(i);
  } else if (!strcmp(cmd, "close")) {
    PQfinish(conns[i]);
    conns[i] = NULL;

  } else if (!strcmp(cmd, "exit")) {
    printf("ok exit 0\n");
    return 1;
  } else {
    printf("unknown %s\n", cmd);
    return 0;
  }
  printf("ok %s %d\n", cmd, i); /* what the tests' Session::command waits for */
  return 0;
}

int main(int argc, char** argv) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  if (!connleak_checkout) {
    fprintf(stderr, "run me under libconnleak.so\n");
    return 2;
  }
  for (int a = 1; a < argc; ++a)
    if (run_command(argv[a])) return 0;
  char line[256];
  while (fgets(line, sizeof line, stdin))
    if (run_command(line)) return 0;
  return 0;
}
