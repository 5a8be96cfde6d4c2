/* Looks like a PHP executable of another engine version to the shim: it
 * exports executor_globals and get_zend_version (as php8.x does), but the
 * version is one connleak was not built for. Its libpq connection, kept until
 * exit, must be tracked with no PHP frames (the layouts are not read) and one
 * line saying why. executor_globals is filled with 0xff: were it read as a
 * zend_executor_globals anyway, its pointers lead nowhere. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

__attribute__((visibility("default"))) unsigned char executor_globals[4096];

__attribute__((visibility("default"))) const char* get_zend_version(void) {
  return "Zend Engine v9.9.0, Copyright (c) Zend Technologies\n";
}

int main(void) {
  memset(executor_globals, 0xff, sizeof executor_globals);
  PGconn* kept = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(kept) != CONNECTION_OK) {
    fprintf(stderr, "connect failed: %s", PQerrorMessage(kept));
    return 1;
  }
  printf("done\n");
  return 0;
}
