/* Linked against libmariadb and libpq, loaded RTLD_LOCAL by local_client_host
 * the way Perl, Ruby and CPython load their database drivers: the client
 * libraries are then outside the global scope, and every call the libraries
 * make to their own exported functions (mysql_query -> mysql_real_query,
 * mysql_set_character_set -> query, the reconnect, ...) enters the shim with a
 * caller whose scope is not the program's. Drives every hooked entry point
 * and prints one deterministic line per call, so a run without the shim and a
 * run with it can be compared line for line. */
#include <libpq-fe.h>
#include <mysql.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char* env(const char* name) {
  const char* v = getenv(name);
  return v ? v : "";
}

/* --- MySQL ------------------------------------------------------------------ */

static MYSQL* my_connect(MYSQL* m) {
  return mysql_real_connect(m, env("CONNLEAK_TEST_MYSQL_HOST"), env("CONNLEAK_TEST_MYSQL_USER"),
                            env("CONNLEAK_TEST_MYSQL_PASSWORD"), env("CONNLEAK_TEST_MYSQL_DB"),
                            (unsigned)atoi(env("CONNLEAK_TEST_MYSQL_PORT")), NULL, 0);
}

/* The first column of the first row of the pending result, or -1. */
static long my_value(MYSQL* m) {
  MYSQL_RES* res = mysql_store_result(m);
  if (!res) return -1;
  MYSQL_ROW row = mysql_fetch_row(res);
  long v = row && row[0] ? atol(row[0]) : -1;
  mysql_free_result(res);
  return v;
}

static int wait_socket(MYSQL* m, int status) {
  struct pollfd p = {mysql_get_socket(m), 0, 0};
  if (status & MYSQL_WAIT_READ) p.events |= POLLIN;
  if (status & MYSQL_WAIT_WRITE) p.events |= POLLOUT;
  if (status & MYSQL_WAIT_EXCEPT) p.events |= POLLPRI;
  int timeout = status & MYSQL_WAIT_TIMEOUT ? 10000 : -1;
  int n = poll(&p, 1, timeout);
  if (n == 0) return MYSQL_WAIT_TIMEOUT;
  int out = 0;
  if (p.revents & POLLIN) out |= MYSQL_WAIT_READ;
  if (p.revents & POLLOUT) out |= MYSQL_WAIT_WRITE;
  if (p.revents & POLLPRI) out |= MYSQL_WAIT_EXCEPT;
  return out;
}

static void drive_mysql_blocking(void) {
  MYSQL* m = mysql_init(NULL);
  printf("mysql_real_connect ok=%d\n", my_connect(m) != NULL);
  int rc = mysql_query(m, "SELECT 41+1");
  printf("mysql_query rc=%d value=%ld\n", rc, my_value(m));
  rc = mysql_real_query(m, "SELECT 7", 8);
  printf("mysql_real_query rc=%d value=%ld\n", rc, my_value(m));
  rc = mysql_send_query(m, "SELECT 8", 8);
  printf("mysql_send_query rc=%d\n", rc);
  rc = mysql_read_query_result(m);
  printf("mysql_read_query_result rc=%d value=%ld\n", rc, my_value(m));
  rc = mysql_set_character_set(m, "utf8mb4");
  printf("mysql_set_character_set rc=%d charset=%s\n", rc, mysql_character_set_name(m));
  printf("mysql_select_db rc=%d\n", mysql_select_db(m, env("CONNLEAK_TEST_MYSQL_DB")));
  printf("mysql_autocommit rc=%d\n", mysql_autocommit(m, 0));
  rc = mysql_query(m, "SELECT 3");
  printf("mysql_query in a transaction rc=%d value=%ld\n", rc, my_value(m));
  printf("mysql_commit rc=%d\n", mysql_commit(m));
  printf("mysql_rollback rc=%d\n", mysql_rollback(m));
  printf("mysql_autocommit rc=%d\n", mysql_autocommit(m, 1));
  printf("mysql_ping rc=%d\n", mysql_ping(m));

  MYSQL_STMT* stmt = mysql_stmt_init(m);
  rc = mysql_stmt_prepare(stmt, "SELECT 5", 8);
  printf("mysql_stmt_prepare rc=%d\n", rc);
  rc = mysql_stmt_execute(stmt);
  long five = 0;
  MYSQL_BIND bind;
  memset(&bind, 0, sizeof bind);
  bind.buffer_type = MYSQL_TYPE_LONG;
  bind.buffer = &five;
  mysql_stmt_bind_result(stmt, &bind);
  int fetched = mysql_stmt_fetch(stmt);
  printf("mysql_stmt_execute rc=%d fetch=%d value=%ld\n", rc, fetched, five);
  mysql_stmt_close(stmt);
  /* mysql_stmt_execute_direct ends in a tail jump to mysql_stmt_execute. */
  stmt = mysql_stmt_init(m);
  rc = mariadb_stmt_execute_direct(stmt, "SELECT 6", 8);
  five = 0;
  mysql_stmt_bind_result(stmt, &bind);
  fetched = mysql_stmt_fetch(stmt);
  printf("mariadb_stmt_execute_direct rc=%d fetch=%d value=%ld\n", rc, fetched, five);
  mysql_stmt_close(stmt);

  rc = mysql_change_user(m, env("CONNLEAK_TEST_MYSQL_USER"), env("CONNLEAK_TEST_MYSQL_PASSWORD"),
                         env("CONNLEAK_TEST_MYSQL_DB"));
  printf("mysql_change_user rc=%d\n", rc);
  printf("mysql_reset_connection rc=%d\n", mysql_reset_connection(m));
  rc = mysql_query(m, "SELECT 9");
  printf("after reset mysql_query rc=%d value=%ld\n", rc, my_value(m));

  /* Reconnect: kill the session from another connection, then ping. (Each
   * call on its own line: argument evaluation order is unspecified.) */
  MYSQL* victim = mysql_init(NULL);
  my_bool reconnect = 1;
  mysql_optionsv(victim, MYSQL_OPT_RECONNECT, &reconnect);
  printf("victim connect ok=%d\n", my_connect(victim) != NULL);
  char kill[64];
  snprintf(kill, sizeof kill, "KILL %lu", mysql_thread_id(victim));
  printf("kill rc=%d\n", mysql_query(m, kill));
  printf("reconnecting mysql_ping rc=%d\n", mysql_ping(victim));
  rc = mysql_query(victim, "SELECT 10");
  printf("after reconnect mysql_query rc=%d value=%ld\n", rc, my_value(victim));
  mysql_close(victim);
  mysql_close(m);
}

static void drive_mysql_nonblocking(void) {
  MYSQL* m = mysql_init(NULL);
  mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
  MYSQL* ret = NULL;
  int status = mysql_real_connect_start(
      &ret, m, env("CONNLEAK_TEST_MYSQL_HOST"), env("CONNLEAK_TEST_MYSQL_USER"),
      env("CONNLEAK_TEST_MYSQL_PASSWORD"), env("CONNLEAK_TEST_MYSQL_DB"),
      (unsigned)atoi(env("CONNLEAK_TEST_MYSQL_PORT")), NULL, 0);
  while (status) status = mysql_real_connect_cont(&ret, m, wait_socket(m, status));
  printf("mysql_real_connect_start ok=%d\n", ret != NULL);
  int err = 0;
  status = mysql_real_query_start(&err, m, "SELECT 11", 9);
  while (status) status = mysql_real_query_cont(&err, m, wait_socket(m, status));
  printf("mysql_real_query_start rc=%d value=%ld\n", err, my_value(m));
  status = mysql_close_start(m);
  while (status) status = mysql_close_cont(m, wait_socket(m, status));
  printf("mysql_close_start done\n");
}

/* --- libpq ------------------------------------------------------------------ */

static const char* pq_value(PGresult* res) {
  static char buf[64];
  snprintf(buf, sizeof buf, "%s", res && PQntuples(res) > 0 ? PQgetvalue(res, 0, 0) : "-");
  PQclear(res);
  return buf;
}

static void drain(PGconn* c, const char* what) {
  PGresult* res;
  while ((res = PQgetResult(c)) != NULL) {
    if (PQresultStatus(res) == PGRES_TUPLES_OK)
      printf("%s value=%s\n", what, PQgetvalue(res, 0, 0));
    PQclear(res);
  }
}

static void drive_pq(void) {
  const char* info = env("CONNLEAK_TEST_PG_CONNINFO");
  PGconn* c = PQconnectdb(info);
  printf("PQconnectdb ok=%d\n", PQstatus(c) == CONNECTION_OK);
  printf("PQexec value=%s\n", pq_value(PQexec(c, "SELECT 41+1")));
  const char* one[] = {"20"};
  printf("PQexecParams value=%s\n",
         pq_value(PQexecParams(c, "SELECT $1::int + 1", 1, NULL, one, NULL, NULL, 0)));
  PQclear(PQprepare(c, "s1", "SELECT $1::int * 2", 1, NULL));
  printf("PQexecPrepared value=%s\n", pq_value(PQexecPrepared(c, "s1", 1, one, NULL, NULL, 0)));
  printf("PQsendQuery rc=%d\n", PQsendQuery(c, "SELECT 1"));
  drain(c, "PQsendQuery");
  printf("PQsendQueryParams rc=%d\n",
         PQsendQueryParams(c, "SELECT $1::int", 1, NULL, one, NULL, NULL, 0));
  drain(c, "PQsendQueryParams");
  printf("PQsendPrepare rc=%d\n", PQsendPrepare(c, "s2", "SELECT $1::int - 1", 1, NULL));
  drain(c, "PQsendPrepare");
  printf("PQsendQueryPrepared rc=%d\n", PQsendQueryPrepared(c, "s2", 1, one, NULL, NULL, 0));
  drain(c, "PQsendQueryPrepared");
  printf("PQenterPipelineMode rc=%d\n", PQenterPipelineMode(c));
  PQsendQueryParams(c, "SELECT 3", 0, NULL, NULL, NULL, NULL, 0);
  printf("PQpipelineSync rc=%d\n", PQpipelineSync(c));
  drain(c, "pipeline");
  PQclear(PQgetResult(c)); /* the sync's PGRES_PIPELINE_SYNC */
  printf("PQexitPipelineMode rc=%d\n", PQexitPipelineMode(c));
  PQclear(PQexec(c, "CREATE TEMP TABLE t (x int)"));
  PQclear(PQexec(c, "COPY t FROM STDIN"));
  PQputCopyData(c, "4\n", 2);
  printf("PQputCopyEnd rc=%d\n", PQputCopyEnd(c, NULL));
  drain(c, "copy");
  printf("copied value=%s\n", pq_value(PQexec(c, "SELECT count(*) FROM t")));
  PQreset(c);
  printf("PQreset ok=%d\n", PQstatus(c) == CONNECTION_OK);
  printf("PQresetStart rc=%d\n", PQresetStart(c));
  PostgresPollingStatusType st;
  while ((st = PQresetPoll(c)) != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    struct pollfd p = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
    poll(&p, 1, 10000);
  }
  printf("PQresetPoll ok=%d\n", st == PGRES_POLLING_OK);
  PQfinish(c);

  const char* keys[] = {"dbname", NULL};
  const char* vals[] = {info, NULL};
  c = PQconnectdbParams(keys, vals, 1);
  printf("PQconnectdbParams ok=%d\n", PQstatus(c) == CONNECTION_OK);
  PQfinish(c);
  c = PQconnectStart(info);
  while ((st = PQconnectPoll(c)) != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    struct pollfd p = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
    poll(&p, 1, 10000);
  }
  printf("PQconnectStart ok=%d\n", st == PGRES_POLLING_OK);
  PQfinish(c);
  c = PQconnectStartParams(keys, vals, 1);
  while ((st = PQconnectPoll(c)) != PGRES_POLLING_OK && st != PGRES_POLLING_FAILED) {
    struct pollfd p = {PQsocket(c), st == PGRES_POLLING_READING ? POLLIN : POLLOUT, 0};
    poll(&p, 1, 10000);
  }
  printf("PQconnectStartParams ok=%d\n", st == PGRES_POLLING_OK);
  PQfinish(c);
  c = PQsetdbLogin(env("CONNLEAK_TEST_PG_HOST"), env("CONNLEAK_TEST_PG_PORT"), NULL, NULL,
                   "postgres", "postgres", NULL);
  printf("PQsetdbLogin ok=%d\n", PQstatus(c) == CONNECTION_OK);
  PQfinish(c);
}

int module_drive(const char* which) {
  if (strcmp(which, "mysql") == 0) {
    drive_mysql_blocking();
    drive_mysql_nonblocking();
  } else if (strcmp(which, "pq") == 0) {
    drive_pq();
  } else {
    return 2;
  }
  fflush(stdout);
  return 0;
}
