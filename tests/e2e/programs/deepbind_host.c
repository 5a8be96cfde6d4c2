/* Loads deepbind_module.so with dlopen(RTLD_NOW | RTLD_DEEPBIND) and drives it:
 * two libpq connections (one finished, one kept until exit) and one MariaDB
 * connection, closed. Links neither client library itself.
 *   deepbind_host MODULE     (servers from CONNLEAK_TEST_PG_* / CONNLEAK_TEST_MYSQL_*) */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>

typedef int (*pq_fn)(const char*);
typedef int (*my_fn)(const char*, const char*, const char*, const char*, unsigned);

static const char* env(const char* name) {
  const char* v = getenv(name);
  if (!v) {
    fprintf(stderr, "%s is not set\n", name);
    exit(2);
  }
  return v;
}

int main(int argc, char** argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: deepbind_host MODULE\n");
    return 2;
  }
  void* module = dlopen(argv[1], RTLD_NOW | RTLD_DEEPBIND);
  if (!module) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  /* A successful dlopen leaves no error behind, with or without the shim. */
  printf("dlerror after dlopen=%s\n", dlerror() ? "set" : "none");
  pq_fn pq_closed = (pq_fn)dlsym(module, "deep_pq_closed");
  pq_fn pq_kept = (pq_fn)dlsym(module, "deep_pq_kept");
  my_fn my_closed = (my_fn)dlsym(module, "deep_mysql_closed");
  if (!pq_closed || !pq_kept || !my_closed) return 2;
  const char* conninfo = env("CONNLEAK_TEST_PG_CONNINFO");
  pq_closed(conninfo);
  pq_kept(conninfo);
  my_closed(env("CONNLEAK_TEST_MYSQL_HOST"), env("CONNLEAK_TEST_MYSQL_USER"),
            env("CONNLEAK_TEST_MYSQL_PASSWORD"), env("CONNLEAK_TEST_MYSQL_DB"),
            (unsigned)atoi(env("CONNLEAK_TEST_MYSQL_PORT")));
  printf("done\n");
  return 0;
}
