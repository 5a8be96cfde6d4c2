/* One small MySQL C API program per behaviour, chosen by argv[1], linked
 * against MariaDB Connector/C (libmariadb). Each scenario opens connections
 * from functions with distinct names so the tests can assert that the reported
 * stack names the right function. Server: $CONNLEAK_TEST_MYSQL_{HOST,PORT,
 * SOCKET,USER,PASSWORD,DB}. Server thread ids are printed as "KEY=ID" lines
 * so the tests can match them with the report's server_id. */
#define _GNU_SOURCE
#include <connleak/connleak.h>
#include <dlfcn.h>
#include <mysql.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define NOINLINE __attribute__((noinline))

static const char* env(const char* name) {
  const char* v = getenv(name);
  if (!v) {
    fprintf(stderr, "%s is not set\n", name);
    exit(2);
  }
  return v;
}
static const char* host(void) {
  return env("CONNLEAK_TEST_MYSQL_HOST");
}
static unsigned port(void) {
  return (unsigned)atoi(env("CONNLEAK_TEST_MYSQL_PORT"));
}
static const char* user(void) {
  return env("CONNLEAK_TEST_MYSQL_USER");
}
static const char* password(void) {
  return env("CONNLEAK_TEST_MYSQL_PASSWORD");
}
static const char* db(void) {
  return env("CONNLEAK_TEST_MYSQL_DB");
}
static const char* sock(void) {
  return env("CONNLEAK_TEST_MYSQL_SOCKET");
}

static void must(MYSQL* m, MYSQL* connected, const char* what) {
  if (!connected) {
    fprintf(stderr, "%s failed: %s\n", what, mysql_error(m));
    exit(3);
  }
}

/* The app user over TCP, with its password. */
static MYSQL* connect_app(MYSQL* m) {
  must(m, mysql_real_connect(m, host(), user(), password(), db(), port(), NULL, 0), "connect");
  return m;
}

static void query(MYSQL* m, const char* q) {
  if (mysql_query(m, q)) {
    fprintf(stderr, "%s: %s\n", q, mysql_error(m));
    exit(3);
  }
  mysql_free_result(mysql_store_result(m));
}

NOINLINE static MYSQL* open_report_conn(void) {
  return connect_app(mysql_init(NULL));
}
NOINLINE static void open_and_close(void) {
  mysql_close(connect_app(mysql_init(NULL)));
}

static int scenario_leak(void) {
  MYSQL* m = open_report_conn();
  printf("leaked_thread_id=%lu\n", mysql_thread_id(m));
  open_and_close();
  return 0;
}

static int scenario_clean(void) {
  for (int i = 0; i < 3; ++i) open_and_close();
  mysql_close(NULL); /* a no-op, not a close */
  return 0;
}

/* A port nothing listens on: the connect fails, the handle still owns memory
 * (mysql_init allocated it), so not closing it is a leak. */
NOINLINE static MYSQL* connect_to_dead_port(void) {
  MYSQL* m = mysql_init(NULL);
  unsigned timeout = 2;
  mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
  if (mysql_real_connect(m, "127.0.0.1", "nobody", "Dead-port-pw", "nodb", 1, NULL, 0)) exit(4);
  return m;
}

static int scenario_failed_leak(void) {
  connect_to_dead_port();
  return 0;
}

static int scenario_failed_closed(void) {
  mysql_close(connect_to_dead_port());
  return 0;
}

/* Initialized, never connected: memory, no server session. */
NOINLINE static MYSQL* init_without_connect(void) {
  return mysql_init(NULL);
}
static int scenario_init_only(void) {
  init_without_connect();
  mysql_close(init_without_connect()); /* and one that is cleaned up */
  return 0;
}

/* A MYSQL on the stack of a function that returns without closing it: by the
 * time the report is written the frame has been reused. */
NOINLINE static unsigned long leak_stack_handle(void) {
  MYSQL m;
  mysql_init(&m);
  connect_app(&m);
  return mysql_thread_id(&m);
}
NOINLINE static int scribble_stack(void) {
  volatile char junk[64 * 1024];
  memset((char*)junk, 0xA5, sizeof junk);
  return junk[100];
}
static int scenario_stack_handle(void) {
  printf("stack_thread_id=%lu\n", leak_stack_handle());
  scribble_stack();
  return 9;
}

/* Non-blocking connect: _start in one function, _cont in a poll loop. */
static MYSQL* wait_connect(MYSQL* m, int status) {
  MYSQL* ret = NULL;
  while (status) {
    struct pollfd pfd = {mysql_get_socket(m), 0, 0};
    if (status & MYSQL_WAIT_READ) pfd.events |= POLLIN;
    if (status & MYSQL_WAIT_WRITE) pfd.events |= POLLOUT;
    if (status & MYSQL_WAIT_EXCEPT) pfd.events |= POLLPRI;
    int n = poll(&pfd, 1, (status & MYSQL_WAIT_TIMEOUT) ? (int)mysql_get_timeout_value_ms(m) : -1);
    int ready = 0;
    if (n == 0) ready = MYSQL_WAIT_TIMEOUT;
    if (pfd.revents & POLLIN) ready |= MYSQL_WAIT_READ;
    if (pfd.revents & POLLOUT) ready |= MYSQL_WAIT_WRITE;
    if (pfd.revents & POLLPRI) ready |= MYSQL_WAIT_EXCEPT;
    status = mysql_real_connect_cont(&ret, m, ready);
  }
  return ret;
}
NOINLINE static MYSQL* start_async_connect(MYSQL** out_ret, int* out_status) {
  MYSQL* m = mysql_init(NULL);
  mysql_options(m, MYSQL_OPT_NONBLOCK, 0);
  *out_status =
      mysql_real_connect_start(out_ret, m, host(), user(), password(), db(), port(), NULL, 0);
  return m;
}
NOINLINE static MYSQL* async_connect(void) {
  MYSQL* ret = NULL;
  int status = 0;
  MYSQL* m = start_async_connect(&ret, &status);
  if (status) ret = wait_connect(m, status);
  must(m, ret, "async connect");
  return m;
}
static void async_close(MYSQL* m) {
  int status = mysql_close_start(m);
  while (status) {
    struct pollfd pfd = {mysql_get_socket(m), POLLIN, 0};
    poll(&pfd, 1, 1000);
    status = mysql_close_cont(m, MYSQL_WAIT_READ);
  }
}
static int scenario_async(void) {
  MYSQL* leaked = async_connect();
  printf("async_thread_id=%lu\n", mysql_thread_id(leaked));
  async_close(async_connect());
  return 0;
}

/* MYSQL_OPT_RECONNECT: the server kills the session, the next query makes
 * libmariadb reconnect (a temporary MYSQL connected, the original closed, the
 * temporary copied over it), all through its own exported functions. */
NOINLINE static MYSQL* open_reconnecting(void) {
  MYSQL* m = mysql_init(NULL);
  my_bool on = 1;
  mysql_options(m, MYSQL_OPT_RECONNECT, &on);
  return connect_app(m);
}
static void kill_session(unsigned long id) {
  MYSQL* admin = mysql_init(NULL); /* root over the socket, no password */
  must(admin, mysql_real_connect(admin, "localhost", "root", NULL, NULL, 0, sock(), 0),
       "admin connect");
  char q[64];
  snprintf(q, sizeof q, "KILL CONNECTION %lu", id);
  query(admin, q);
  mysql_close(admin);
}
static unsigned long force_reconnect(MYSQL* m) {
  unsigned long before = mysql_thread_id(m);
  kill_session(before);
  for (int i = 0; i < 100; ++i) {
    if (mysql_query(m, "SELECT 1") == 0) {
      mysql_free_result(mysql_store_result(m));
      if (mysql_thread_id(m) != before) return mysql_thread_id(m);
    }
    usleep(20000);
  }
  fprintf(stderr, "no reconnect happened\n");
  exit(5);
}
static int scenario_reconnect(void) {
  MYSQL* keep = open_reconnecting();
  MYSQL* done = open_reconnecting();
  unsigned long old_id = mysql_thread_id(keep);
  unsigned long new_id = force_reconnect(keep);
  force_reconnect(done);
  mysql_close(done);
  printf("old_thread_id=%lu\nnew_thread_id=%lu\n", old_id, new_id);
  return 0;
}

/* 16 threads, each 50 open/close pairs and exactly one leak. */
enum { kThreads = 16, kRounds = 50 };
NOINLINE static void storm_leak_one(void) {
  open_report_conn();
}
static void* storm_worker(void* arg) {
  (void)arg;
  mysql_thread_init();
  for (int i = 0; i < kRounds; ++i) open_and_close();
  storm_leak_one();
  mysql_thread_end();
  return NULL;
}
static int scenario_storm(void) {
  pthread_t t[kThreads];
  for (int i = 0; i < kThreads; ++i) pthread_create(&t[i], NULL, storm_worker, NULL);
  for (int i = 0; i < kThreads; ++i) pthread_join(t[i], NULL);
  return 0;
}

/* Every way this program hands the library a password; none may reach any
 * output. argv carries it too (--password=...). */
NOINLINE static void leak_with_password(void) {
  open_report_conn();
}
NOINLINE static void leak_async_with_password(void) {
  async_connect();
}
NOINLINE static void leak_failed_with_password(void) {
  MYSQL* m = mysql_init(NULL);
  if (mysql_real_connect(m, "127.0.0.1", user(), password(), db(), 1, NULL, 0)) exit(4);
}
NOINLINE static void leak_socket_with_password(void) {
  MYSQL* m = mysql_init(NULL);
  must(m, mysql_real_connect(m, "localhost", user(), password(), db(), 0, sock(), 0),
       "socket connect");
}
static int scenario_passwords(void) {
  leak_with_password();
  leak_async_with_password();
  leak_failed_with_password();
  leak_socket_with_password();
  return 0;
}

/* Closing twice: a double free in libmariadb without connleak. */
NOINLINE static MYSQL* open_for_double_close(void) {
  return open_report_conn();
}
NOINLINE static void first_close(MYSQL* m) {
  mysql_close(m);
}
NOINLINE static void second_close(MYSQL* m) {
  mysql_close(m);
}
static int scenario_double_close(void) {
  MYSQL* m = open_for_double_close();
  first_close(m);
  second_close(m);
  return 0;
}

/* mysql_init through a dlsym'd pointer (unseen), then connected through the
 * PLT: the handle's life starts at the connect. */
NOINLINE static MYSQL* connect_unseen_handle(void) {
  void* lib = dlopen("libmariadb.so.3", RTLD_NOW | RTLD_NOLOAD);
  MYSQL* (*raw_init)(MYSQL*) = NULL;
  if (lib) *(void**)(&raw_init) = dlsym(lib, "mysql_init");
  if (!raw_init) exit(2);
  return connect_app(raw_init(NULL));
}
static int scenario_unseen_init(void) {
  MYSQL* m = connect_unseen_handle();
  printf("unseen_thread_id=%lu\n", mysql_thread_id(m));
  return 0;
}

/* A handle factory (mysql_init) and a connect in another function: the
 * connection was made where mysql_real_connect was called. Plus a connection
 * whose init and connect share a function (no second stack for it). */
NOINLINE static MYSQL* make_handle(void) {
  return mysql_init(NULL); /* make_handle inits */
}
NOINLINE static MYSQL* open_conn(MYSQL* m) {
  const char *h = host(), *u = user(), *pw = password(), *d = db();
  MYSQL* done = mysql_real_connect(m, h, u, pw, d, port(), NULL, 0); /* open_conn connects */
  must(m, done, "connect");
  return m;
}
NOINLINE static MYSQL* init_and_connect_here(void) {
  MYSQL* m = mysql_init(NULL);
  must(m, mysql_real_connect(m, host(), user(), password(), db(), port(), NULL, 0), "connect");
  return m;
}
static int scenario_init_elsewhere(void) {
  MYSQL* factory_made = open_conn(make_handle());
  MYSQL* here = init_and_connect_here();
  printf("factory_thread_id=%lu\nhere_thread_id=%lu\n", mysql_thread_id(factory_made),
         mysql_thread_id(here));
  return 0;
}

/* change_user and reset_connection keep the connection (and its record). */
NOINLINE static MYSQL* open_then_change_user(void) {
  MYSQL* m = open_report_conn();
  if (mysql_change_user(m, "root", NULL, "mysql")) {
    fprintf(stderr, "change_user: %s\n", mysql_error(m));
    exit(3);
  }
  if (mysql_reset_connection(m)) {
    fprintf(stderr, "reset_connection: %s\n", mysql_error(m));
    exit(3);
  }
  query(m, "SELECT 1");
  return m;
}
static int scenario_change_user(void) {
  MYSQL* m = open_then_change_user();
  printf("changed_thread_id=%lu\n", mysql_thread_id(m));
  MYSQL* other = open_then_change_user();
  mysql_close(other);
  return 0;
}

/* What each connection last did (issue 15), with secrets in the literals:
 * none of "hunter2" may reach any output. Two connections kept (leaked): one
 * ran text queries, one prepared statements; a dump is written before exit. */
static void real_query(MYSQL* m, const char* q) {
  if (mysql_real_query(m, q, (unsigned long)strlen(q))) {
    fprintf(stderr, "%s: %s\n", q, mysql_error(m));
    exit(3);
  }
  mysql_free_result(mysql_store_result(m));
}
NOINLINE static MYSQL* run_text_queries(void) {
  MYSQL* m = open_report_conn();
  real_query(m, "SET @k = 'hunter2-set'");
  query(m, "SELECT AES_ENCRYPT('data', 'hunter2-key')");
  real_query(m, "SELECT @k = 'hunter2-where' AND 7 > 3, x'4142', \"hunter2-dq\"");
  return m;
}
NOINLINE static MYSQL* run_prepared(void) {
  MYSQL* m = open_report_conn();
  MYSQL_STMT* st = mysql_stmt_init(m);
  const char* q = "SELECT ? + 5, 'hunter2-stmt'";
  if (!st || mysql_stmt_prepare(st, q, (unsigned long)strlen(q))) {
    fprintf(stderr, "prepare: %s\n", mysql_error(m));
    exit(3);
  }
  long long v = 37;
  MYSQL_BIND bind;
  memset(&bind, 0, sizeof bind);
  bind.buffer_type = MYSQL_TYPE_LONGLONG;
  bind.buffer = &v;
  if (mysql_stmt_bind_param(st, &bind)) exit(3);
  for (int i = 0; i < 2; ++i) {
    if (mysql_stmt_execute(st) || mysql_stmt_store_result(st)) {
      fprintf(stderr, "execute: %s\n", mysql_stmt_error(st));
      exit(3);
    }
    mysql_stmt_free_result(st);
  }
  /* The statement handle stays open with its connection: both are leaked. */
  return m;
}
static int scenario_activity(void) {
  MYSQL* text = run_text_queries();
  MYSQL* prepared = run_prepared();
  printf("text_thread_id=%lu\nprepared_thread_id=%lu\n", mysql_thread_id(text),
         mysql_thread_id(prepared));
  if (CONNLEAK_DUMP() != 0) return 5;
  return 0;
}

int main(int argc, char** argv) {
  if (argc < 2) {
    fprintf(stderr, "usage: %s SCENARIO\n", argv[0]);
    return 2;
  }
  if (mysql_library_init(0, NULL, NULL)) return 2;
  const char* s = argv[1];
  int rc = 2;
  if (!strcmp(s, "leak"))
    rc = scenario_leak();
  else if (!strcmp(s, "clean"))
    rc = scenario_clean();
  else if (!strcmp(s, "failed_leak"))
    rc = scenario_failed_leak();
  else if (!strcmp(s, "failed_closed"))
    rc = scenario_failed_closed();
  else if (!strcmp(s, "init_only"))
    rc = scenario_init_only();
  else if (!strcmp(s, "stack_handle"))
    rc = scenario_stack_handle();
  else if (!strcmp(s, "async"))
    rc = scenario_async();
  else if (!strcmp(s, "reconnect"))
    rc = scenario_reconnect();
  else if (!strcmp(s, "storm"))
    rc = scenario_storm();
  else if (!strcmp(s, "passwords"))
    rc = scenario_passwords();
  else if (!strcmp(s, "double_close"))
    rc = scenario_double_close();
  else if (!strcmp(s, "unseen_init"))
    rc = scenario_unseen_init();
  else if (!strcmp(s, "change_user"))
    rc = scenario_change_user();
  else if (!strcmp(s, "init_elsewhere"))
    rc = scenario_init_elsewhere();
  else if (!strcmp(s, "activity"))
    rc = scenario_activity();
  else
    fprintf(stderr, "unknown scenario %s\n", s);
  fflush(stdout);
  return rc;
}
