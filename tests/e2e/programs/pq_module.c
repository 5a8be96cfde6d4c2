/* A plugin linked against libpq, loaded by the hosts with dlopen(RTLD_LOCAL):
 * its libpq is not in the global scope (the Python extension-module case). */
#include <libpq-fe.h>
#include <stdlib.h>

#define EXPORT __attribute__((visibility("default"), noinline))

EXPORT int module_open_leak(const char* conninfo) {
  PGconn* c = PQconnectdb(conninfo);
  return PQstatus(c) == CONNECTION_OK ? 0 : 1;
}

EXPORT int module_open_close(const char* conninfo) {
  PGconn* c = PQconnectdb(conninfo);
  int rc = PQstatus(c) == CONNECTION_OK ? 0 : 1;
  PQfinish(c);
  return rc;
}
