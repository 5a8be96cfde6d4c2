/* Not linked against libpq. Loads argv[1] (a module that is) RTLD_LOCAL and
 * leaks one connection through it, closes another. With argv[2] == "self",
 * also opens one through its own libpq (for the dual-copy host build). */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef WITH_LIBPQ
#include <libpq-fe.h>
__attribute__((noinline)) static void host_open_leak(void) {
  PGconn* c = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(c) != CONNECTION_OK) exit(3);
}
#endif

int main(int argc, char** argv) {
  if (argc < 2) return 2;
  void* mod = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (!mod) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    return 2;
  }
  int (*open_leak)(const char*) = NULL;
  int (*open_close)(const char*) = NULL;
  *(void**)(&open_leak) = dlsym(mod, "module_open_leak"); /* POSIX idiom for function pointers */
  *(void**)(&open_close) = dlsym(mod, "module_open_close");
  const char* info = getenv("CONNLEAK_TEST_PG_CONNINFO");
  if (!open_leak || !open_close || !info) return 2;
  if (open_leak(info) || open_close(info)) return 3;
#ifdef WITH_LIBPQ
  host_open_leak();
#endif
  return 0;
}
