/* A minimal mysqlslap for the MySQL C API as programs link it (libmariadb.so.3,
 * so connleak's hooks see every call): one client runs `SELECT 1` for a fixed
 * time, either on one persistent connection or on a new connection per query.
 *
 *   mysql_load persistent|connect SECONDS HOST PORT USER PASSWORD DB
 * Prints {"queries": N, "seconds": S, "qps": Q}. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static MYSQL* connect_or_die(char** a) {
  MYSQL* m = mysql_init(NULL);
  if (!mysql_real_connect(m, a[3], a[5], a[6], a[7], (unsigned)atoi(a[4]), NULL, 0)) {
    fprintf(stderr, "connect: %s\n", mysql_error(m));
    exit(1);
  }
  return m;
}

static void query_or_die(MYSQL* m) {
  if (mysql_query(m, "SELECT 1") != 0) {
    fprintf(stderr, "query: %s\n", mysql_error(m));
    exit(1);
  }
  mysql_free_result(mysql_store_result(m));
}

int main(int argc, char** argv) {
  if (argc != 8) {
    fprintf(stderr, "usage: %s persistent|connect SECONDS HOST PORT USER PASSWORD DB\n", argv[0]);
    return 2;
  }
  int per_query = strcmp(argv[1], "connect") == 0;
  double seconds = atof(argv[2]);
  long queries = 0;
  MYSQL* m = per_query ? NULL : connect_or_die(argv);
  double t0 = now_s(), t = t0;
  while (t - t0 < seconds) {
    if (per_query) m = connect_or_die(argv);
    query_or_die(m);
    if (per_query) mysql_close(m);
    ++queries;
    t = now_s();
  }
  if (!per_query) mysql_close(m);
  printf("{\"queries\": %ld, \"seconds\": %.3f, \"qps\": %.1f}\n", queries, t - t0,
         (double)queries / (t - t0));
  return 0;
}
