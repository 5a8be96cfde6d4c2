/* Recall test for leak detectors: a "report job" that opens 3 connections in
 * open_report_conn() and never closes them, next to 5 requests that clean up.
 * Real libpq against a real server: argv[1] is the conninfo. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>

static PGconn* connect_or_die(const char* conninfo) {
  PGconn* conn = PQconnectdb(conninfo);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(conn));
    exit(1);
  }
  return conn;
}

/* BUG: the connection is dropped without PQfinish. */
__attribute__((noinline)) static int open_report_conn(const char* conninfo) {
  PGconn* conn = connect_or_die(conninfo);
  PGresult* res = PQexec(conn, "select count(*) from pg_class");
  int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
  PQclear(res);
  return ok;
}

__attribute__((noinline)) static int handle_request(const char* conninfo) {
  PGconn* conn = connect_or_die(conninfo);
  PGresult* res = PQexec(conn, "select 1");
  int ok = PQresultStatus(res) == PGRES_TUPLES_OK;
  PQclear(res);
  PQfinish(conn);
  return ok;
}

int main(int argc, char** argv) {
  const char* conninfo = argc > 1 ? argv[1] : "";
  int ok = 0;
  for (int i = 0; i < 5; ++i) ok += handle_request(conninfo);
  for (int i = 0; i < 3; ++i) ok += open_report_conn(conninfo);
  printf("%d of 8 queries ok\n", ok);
  return 0;
}
