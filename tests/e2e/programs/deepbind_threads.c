/* Two copies of deepbind_module.so loaded with dlopen(RTLD_NOW | RTLD_DEEPBIND)
 * at the same moment from two threads, while a third loads and unloads an
 * ordinary library in a loop: the GOT rewrites must not fault each other nor
 * the loader. Then a fork()ed child uses a rewritten module (its hooks record
 * under the child's pid), and the parent keeps one connection: the canary.
 *   deepbind_threads MODULE_A MODULE_B   (PostgreSQL from CONNLEAK_TEST_PG_CONNINFO) */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*pq_fn)(const char*);

static pthread_barrier_t g_start;
static const char* g_conninfo;

struct loader {
  const char* path;
  void* handle;
};

static void* load_and_use(void* arg) {
  struct loader* l = arg;
  pthread_barrier_wait(&g_start);
  l->handle = dlopen(l->path, RTLD_NOW | RTLD_DEEPBIND);
  if (!l->handle) {
    fprintf(stderr, "dlopen: %s\n", dlerror());
    exit(2);
  }
  ((pq_fn)dlsym(l->handle, "deep_pq_closed"))(g_conninfo);
  return NULL;
}

static void* churn(void* arg) {
  (void)arg;
  pthread_barrier_wait(&g_start);
  for (int i = 0; i < 200; ++i) {
    void* h = dlopen("libz.so.1", RTLD_NOW | RTLD_LOCAL);
    if (h) dlclose(h);
  }
  return NULL;
}

int main(int argc, char** argv) {
  if (argc != 3 || !(g_conninfo = getenv("CONNLEAK_TEST_PG_CONNINFO"))) {
    fprintf(stderr, "usage: deepbind_threads MODULE_A MODULE_B (CONNLEAK_TEST_PG_CONNINFO set)\n");
    return 2;
  }
  struct loader a = {argv[1], NULL}, b = {argv[2], NULL};
  pthread_t ta, tb, tc;
  pthread_barrier_init(&g_start, NULL, 3);
  pthread_create(&ta, NULL, load_and_use, &a);
  pthread_create(&tb, NULL, load_and_use, &b);
  pthread_create(&tc, NULL, churn, NULL);
  pthread_join(ta, NULL);
  pthread_join(tb, NULL);
  pthread_join(tc, NULL);
  fflush(stdout); /* the child must not print the parent's buffered lines again */
  pid_t child = fork();
  if (child == 0) {
    ((pq_fn)dlsym(b.handle, "deep_pq_closed"))(g_conninfo);
    exit(0);
  }
  int status = 0;
  waitpid(child, &status, 0);
  printf("child pid %d exit %d\n", (int)child, WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  ((pq_fn)dlsym(a.handle, "deep_pq_kept"))(g_conninfo);
  printf("done\n");
  return 0;
}
