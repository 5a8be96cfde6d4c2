// What a host carries because the shim is loaded: the shared objects mapped
// before its first connection ("before <path>" lines), the same after a
// connection and ten queries ("after <path>"), and then how many threads the
// process runs and whether glibc still takes its single-threaded fast paths.
// The test compares these lines with and without the shim.
#include <dirent.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/single_threaded.h>

// One line per mapping of a shared object (its path); the test de-duplicates.
static void print_objects(const char* tag) {
  FILE* maps = fopen("/proc/self/maps", "r");
  if (!maps) {
    perror("/proc/self/maps");
    exit(3);
  }
  char line[4096];
  while (fgets(line, sizeof line, maps)) {
    char* path = strchr(line, '/');
    if (!path) continue;
    path[strcspn(path, "\n")] = '\0';
    if (strstr(path, ".so")) printf("%s %s\n", tag, path);
  }
  fclose(maps);
}

static int count_threads(void) {
  DIR* dir = opendir("/proc/self/task");
  if (!dir) return -1;
  int n = 0;
  struct dirent* e;
  while ((e = readdir(dir)))
    if (e->d_name[0] != '.') ++n;
  closedir(dir);
  return n;
}

int main(void) {
  const char* info = getenv("CONNLEAK_TEST_PG_CONNINFO");
  if (!info) return 2;
  print_objects("before");
  PGconn* conn = PQconnectdb(info);
  if (PQstatus(conn) != CONNECTION_OK) {
    fprintf(stderr, "connect: %s", PQerrorMessage(conn));
    return 4;
  }
  for (int i = 0; i < 10; ++i) {
    PGresult* res = PQexec(conn, "select 1");
    if (PQresultStatus(res) != PGRES_TUPLES_OK) return 5;
    PQclear(res);
  }
  print_objects("after");
  printf("threads %d\n", count_threads());
  printf("single_threaded %d\n", (int)__libc_single_threaded);
  fflush(stdout);
  PQfinish(conn);
  return 0;
}
