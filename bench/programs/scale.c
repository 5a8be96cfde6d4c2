/* Scale scenarios against the stub libpq, run with and without the shim.
 *
 *   scale hold N    open 1 connection (warm-up), then N more from one site
 *                   32 frames deep; print RSS before/after the N as JSON; with
 *                   BENCH_DUMP_DIR set, also raise SIGUSR2 (connleak's dump
 *                   signal) and time until the dump file appears there;
 *                   then close everything.
 *   scale leak N S  open N connections from S distinct functions (N/S each,
 *                   ~20 frames deep) and never close them;
 *   scale clean N S the same, but close them all.
 * `leak` and `clean` print the CLOCK_MONOTONIC time (ns) at the end of main,
 * so the caller can time the exit (where connleak writes its report). */
#include <dirent.h>
#include <libpq-fe.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static const char* const kConninfo = "host=127.0.0.1 port=5432 dbname=bench user=bench";

static long long mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static long rss_bytes(void) {
  long size = 0, resident = 0;
  FILE* f = fopen("/proc/self/statm", "r");
  if (!f) return -1;
  if (fscanf(f, "%ld %ld", &size, &resident) != 2) resident = -1;
  fclose(f);
  return resident * sysconf(_SC_PAGESIZE);
}

/* --- 100 distinct acquisition sites ------------------------------------ */
#define SITE(n)                                                   \
  __attribute__((noinline)) PGconn* site_##n(void) {              \
    PGconn* conn = PQconnectdb(kConninfo);                        \
    __asm__ volatile("" ::: "memory"); /* keep it a real frame */ \
    return conn;                                                  \
  }
// clang-format reflows these sequences differently on each pass:
// clang-format off
#define SITES10(d) \
  SITE(d##0) SITE(d##1) SITE(d##2) SITE(d##3) SITE(d##4) \
  SITE(d##5) SITE(d##6) SITE(d##7) SITE(d##8) SITE(d##9)
SITES10(0) SITES10(1) SITES10(2) SITES10(3) SITES10(4)
SITES10(5) SITES10(6) SITES10(7) SITES10(8) SITES10(9)
#define PTR10(d) \
  site_##d##0, site_##d##1, site_##d##2, site_##d##3, site_##d##4, \
  site_##d##5, site_##d##6, site_##d##7, site_##d##8, site_##d##9
typedef PGconn* (*SiteFn)(void);
// clang-format on
static const SiteFn kSites[100] = {PTR10(0), PTR10(1), PTR10(2), PTR10(3), PTR10(4),
                                   PTR10(5), PTR10(6), PTR10(7), PTR10(8), PTR10(9)};

__attribute__((noinline)) static PGconn* open_deep(int depth, SiteFn site) {
  PGconn* conn = depth > 0 ? open_deep(depth - 1, site) : site();
  __asm__ volatile("" ::: "memory");
  return conn;
}

static int wait_for_dump(const char* dir, long long timeout_ns, long long* took_ns) {
  char prefix[64];
  snprintf(prefix, sizeof prefix, "connleak.%d.", (int)getpid());
  long long t0 = mono_ns();
  raise(SIGUSR2);
  while (mono_ns() - t0 < timeout_ns) {
    DIR* d = opendir(dir);
    struct dirent* e;
    int found = 0;
    while (d && (e = readdir(d)) != NULL)
      if (strncmp(e->d_name, prefix, strlen(prefix)) == 0 && strstr(e->d_name, ".json")) found = 1;
    if (d) closedir(d);
    if (found) {
      *took_ns = mono_ns() - t0;
      return 1;
    }
    usleep(200);
  }
  return 0;
}

static int hold(long n) {
  PGconn** conns = malloc((size_t)(n + 1) * sizeof *conns);
  if (!conns) return 1;
  conns[0] = open_deep(32, kSites[0]); /* warm-up: first-use costs stay out of the delta */
  long before = rss_bytes();
  for (long i = 1; i <= n; ++i) conns[i] = open_deep(32, kSites[0]);
  long after = rss_bytes();
  printf("{\"connections\": %ld, \"rss_before\": %ld, \"rss_after\": %ld", n, before, after);
  const char* dump_dir = getenv("BENCH_DUMP_DIR");
  long long took = 0;
  if (dump_dir && *dump_dir) {
    if (wait_for_dump(dump_dir, 60LL * 1000000000LL, &took))
      printf(", \"dump_ms\": %.3f", (double)took / 1e6);
    else
      printf(", \"dump_ms\": null");
  }
  printf("}\n");
  fflush(stdout);
  for (long i = 0; i <= n; ++i) PQfinish(conns[i]);
  free(conns);
  return 0;
}

static int leak_or_clean(long n, int sites, int close_them) {
  PGconn** conns = malloc((size_t)n * sizeof *conns);
  if (!conns || sites < 1 || sites > 100) return 1;
  for (long i = 0; i < n; ++i) conns[i] = open_deep(20, kSites[i % sites]);
  if (close_them)
    for (long i = 0; i < n; ++i) PQfinish(conns[i]);
  free(conns);
  printf("{\"end_of_main_mono_ns\": %lld}\n", mono_ns());
  fflush(stdout);
  return 0;
}

int main(int argc, char** argv) {
  if (argc >= 3 && strcmp(argv[1], "hold") == 0) return hold(atol(argv[2]));
  if (argc >= 4 && strcmp(argv[1], "leak") == 0)
    return leak_or_clean(atol(argv[2]), atoi(argv[3]), 0);
  if (argc >= 4 && strcmp(argv[1], "clean") == 0)
    return leak_or_clean(atol(argv[2]), atoi(argv[3]), 1);
  fprintf(stderr, "usage: %s hold N | leak N SITES | clean N SITES\n", argv[0]);
  return 2;
}
