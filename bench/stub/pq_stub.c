/* libpq_stub.so: the libpq entry points connleak hooks or calls, with trivial
 * bodies, so benchmarks measure the shim and not the network or a server.
 *   - a connect mallocs a PGconn, PQfinish frees it;
 *   - PQconnectdb calls the exported PQconnectStart through the PLT, like the
 *     real libpq (the shim sees that self-call and must pass it through);
 *   - PQexec allocates nothing (it returns a static result) and tracks the
 *     transaction state for BEGIN / COMMIT / ROLLBACK, so PQtransactionStatus
 *     answers like a server would; PQsendQuery leaves the connection ACTIVE
 *     until PQgetResult has returned the result.
 * Types come from <libpq-fe.h>, so the signatures cannot drift from libpq's. */
#include <libpq-fe.h>
#include <stdlib.h>
#include <string.h>

struct pg_conn {
  ConnStatusType status;
  PGTransactionStatusType txn;
  int pending; /* a result is waiting for PQgetResult */
  int backend_pid;
};

struct pg_result {
  int dummy;
};

static PGresult g_result;
static int g_next_pid = 1000;

static void apply_command(PGconn* conn, const char* query) {
  if (!query) return;
  if (strncmp(query, "BEGIN", 5) == 0 || strncmp(query, "begin", 5) == 0)
    conn->txn = PQTRANS_INTRANS;
  else if (strncmp(query, "COMMIT", 6) == 0 || strncmp(query, "ROLLBACK", 8) == 0 ||
           strncmp(query, "commit", 6) == 0 || strncmp(query, "rollback", 8) == 0)
    conn->txn = PQTRANS_IDLE;
}

static PGconn* new_conn(void) {
  PGconn* conn = malloc(sizeof *conn);
  if (!conn) return NULL;
  conn->status = CONNECTION_OK;
  conn->txn = PQTRANS_IDLE;
  conn->pending = 0;
  conn->backend_pid = __atomic_fetch_add(&g_next_pid, 1, __ATOMIC_RELAXED);
  return conn;
}

PGconn* PQconnectStart(const char* conninfo) {
  (void)conninfo;
  return new_conn();
}

/* Like libpq: PQconnectStart, then finish the connect. Not a tail call, so the
 * shim sees this library as the caller of PQconnectStart (a self-call). */
PGconn* PQconnectdb(const char* conninfo) {
  PGconn* conn = PQconnectStart(conninfo);
  if (conn) conn->status = CONNECTION_OK; /* "connectDBComplete" */
  return conn;
}

PGconn* PQconnectdbParams(const char* const* keywords, const char* const* values,
                          int expand_dbname) {
  (void)keywords, (void)values, (void)expand_dbname;
  return new_conn();
}

PGconn* PQconnectStartParams(const char* const* keywords, const char* const* values,
                             int expand_dbname) {
  (void)keywords, (void)values, (void)expand_dbname;
  return new_conn();
}

PostgresPollingStatusType PQconnectPoll(PGconn* conn) {
  (void)conn;
  return PGRES_POLLING_OK;
}

void PQfinish(PGconn* conn) {
  free(conn);
}

void PQreset(PGconn* conn) {
  (void)conn;
}
int PQresetStart(PGconn* conn) {
  (void)conn;
  return 1;
}

ConnStatusType PQstatus(const PGconn* conn) {
  return conn ? conn->status : CONNECTION_BAD;
}
PGTransactionStatusType PQtransactionStatus(const PGconn* conn) {
  if (!conn) return PQTRANS_UNKNOWN;
  return conn->pending ? PQTRANS_ACTIVE : conn->txn;
}
char* PQhost(const PGconn* conn) {
  return conn ? (char*)"127.0.0.1" : NULL;
}
char* PQport(const PGconn* conn) {
  return conn ? (char*)"5432" : NULL;
}
char* PQdb(const PGconn* conn) {
  return conn ? (char*)"bench" : NULL;
}
char* PQuser(const PGconn* conn) {
  return conn ? (char*)"bench" : NULL;
}
int PQbackendPID(const PGconn* conn) {
  return conn ? conn->backend_pid : 0;
}
char* PQerrorMessage(const PGconn* conn) {
  (void)conn;
  return (char*)"";
}

PGresult* PQexec(PGconn* conn, const char* query) {
  if (!conn) return NULL;
  apply_command(conn, query);
  return &g_result;
}

int PQsendQuery(PGconn* conn, const char* query) {
  if (!conn) return 0;
  apply_command(conn, query);
  conn->pending = 1;
  return 1;
}

PGresult* PQgetResult(PGconn* conn) {
  if (!conn || !conn->pending) return NULL;
  conn->pending = 0;
  return &g_result;
}

ExecStatusType PQresultStatus(const PGresult* res) {
  return res ? PGRES_COMMAND_OK : PGRES_FATAL_ERROR;
}
void PQclear(PGresult* res) {
  (void)res;
}
