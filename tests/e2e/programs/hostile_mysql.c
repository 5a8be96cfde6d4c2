/* Issue 20, item 3: a MySQL password that also appears in the user and the
 * database name (HOSTILE_MYSQL_PW). The connect goes to a port nothing listens on, so
 * it fails fast and the handle, never closed, is reported with its target. */
#include <mysql.h>
#include <stdio.h>
#include <stdlib.h>

int main(void) {
  const char* pw = getenv("HOSTILE_MYSQL_PW");
  if (!pw) return 2;
  char db[256];
  snprintf(db, sizeof db, "db_%s_x", pw);
  MYSQL* m = mysql_init(NULL);
  unsigned timeout = 2;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (mysql_real_connect(m, "127.0.0.1", pw, pw, db, 1, NULL, 0)) return 4;
  return 0; /* m leaks: the failed connect is never closed */
}
