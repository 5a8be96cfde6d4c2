/* libmysql_stub.so: the MySQL C API entry points connleak hooks or calls, with
 * trivial bodies (no network): mysql_init(NULL) callocs a MYSQL,
 * mysql_real_connect copies the target strings, mysql_close frees both, and
 * mariadb_get_infov answers the fields the shim reads back. Types come from
 * MariaDB's <mysql.h>. */
#include <mysql.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static unsigned long g_next_thread_id = 1;

MYSQL* STDCALL mysql_init(MYSQL* mysql) {
  int own = mysql == NULL;
  if (own) {
    mysql = calloc(1, sizeof *mysql);
    if (!mysql) return NULL;
  } else {
    memset(mysql, 0, sizeof *mysql);
  }
  mysql->free_me = (my_bool)own;
  return mysql;
}

static char* dup_or_null(const char* s) {
  return s ? strdup(s) : NULL;
}

MYSQL* STDCALL mysql_real_connect(MYSQL* mysql, const char* host, const char* user,
                                  const char* passwd, const char* db, unsigned int port,
                                  const char* unix_socket, unsigned long clientflag) {
  (void)passwd, (void)clientflag;
  if (!mysql) return NULL;
  mysql->host = dup_or_null(host ? host : "localhost");
  mysql->user = dup_or_null(user);
  mysql->db = dup_or_null(db);
  mysql->unix_socket = dup_or_null(unix_socket);
  mysql->port = port ? port : 3306;
  mysql->thread_id = __atomic_fetch_add(&g_next_thread_id, 1, __ATOMIC_RELAXED);
  return mysql;
}

void STDCALL mysql_close(MYSQL* mysql) {
  if (!mysql) return;
  free(mysql->host);
  free(mysql->user);
  free(mysql->db);
  free(mysql->unix_socket);
  if (mysql->free_me) free(mysql);
}

unsigned long STDCALL mysql_thread_id(MYSQL* mysql) {
  return mysql ? mysql->thread_id : 0;
}

int STDCALL mysql_query(MYSQL* mysql, const char* q) {
  return mysql && q ? 0 : 1;
}

const char* STDCALL mysql_error(MYSQL* mysql) {
  (void)mysql;
  return "";
}

my_bool mariadb_get_infov(MYSQL* mysql, enum mariadb_value value, void* arg, ...) {
  if (!mysql || !arg) return 1;
  switch (value) {
    case MARIADB_CONNECTION_HOST:
      *(const char**)arg = mysql->host;
      return 0;
    case MARIADB_CONNECTION_USER:
      *(const char**)arg = mysql->user;
      return 0;
    case MARIADB_CONNECTION_SCHEMA:
      *(const char**)arg = mysql->db;
      return 0;
    case MARIADB_CONNECTION_UNIX_SOCKET:
      *(const char**)arg = mysql->unix_socket;
      return 0;
    case MARIADB_CONNECTION_PORT:
      *(unsigned int*)arg = mysql->port;
      return 0;
    case MARIADB_CONNECTION_PVIO_TYPE:
      *(unsigned int*)arg = 1;
      return 0; /* TCP */
    default:
      return 1;
  }
}
