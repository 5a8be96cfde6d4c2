/* A host that closes every descriptor it did not open itself after its first
 * connection (as daemons and sandboxes do), then opens its own at exactly the
 * numbers it found, and checks that nobody else reads or writes them.
 * Driven line by line on stdin:
 *   open              connect to PostgreSQL (the shim's descriptors now exist)
 *   closefrom | close_range
 *                     list /proc/self/fd (>= 3), close them all, put one end
 *                     of a fresh socket pair at each of those numbers, keep
 *                     the other end, and send "host-data\n" through each pair;
 *                     prints "found N1 N2 ..."
 *   check             reads every pair back: the host's end must hold exactly
 *                     "host-data\n" (nothing stolen), the kept end nothing
 *                     (nothing written by someone else); prints
 *                     "check stolen=S foreign=F"
 * Each command answers "ok <command> 0". */
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

enum { kMax = 64 };
static const char kData[] = "host-data\n";
static int found[kMax], kept[kMax], nfound;
static PGconn* conn;

static void list_descriptors(void) {
  DIR* d = opendir("/proc/self/fd");
  struct dirent* e;
  int self = dirfd(d);
  nfound = 0;
  while ((e = readdir(d)) && nfound < kMax) {
    int fd = atoi(e->d_name);
    if (e->d_name[0] < '0' || e->d_name[0] > '9' || fd < 3 || fd == self) continue;
    found[nfound++] = fd;
  }
  closedir(d);
}

/* The shim re-creates its descriptors on its own thread after the host closed
 * them; creating one briefly holds the lowest free number before it moves up.
 * This host takes the numbers over at once, while that may be going on: the
 * shim's creation window (shim/runtime/own_fds.h) must keep its temporary
 * number and the host's dup2 onto that number apart. */
/* Our end of each pair goes to exactly the number we found; the kept end is
 * parked at 200+ so it never lands on one of those numbers. */
static void take_over_numbers(void) {
  for (int i = 0; i < nfound; ++i) {
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair) != 0) exit(3);
    kept[i] = fcntl(pair[1], F_DUPFD, 200);
    int mine = fcntl(pair[0], F_DUPFD, 200);
    close(pair[0]);
    close(pair[1]);
    if (dup2(mine, found[i]) != found[i]) exit(4);
    close(mine);
    if (write(kept[i], kData, sizeof kData - 1) != (ssize_t)(sizeof kData - 1)) exit(5);
  }
}

static void check(void) {
  int stolen = 0, foreign = 0;
  for (int i = 0; i < nfound; ++i) {
    char buf[256];
    ssize_t n = read(found[i], buf, sizeof buf);
    if (n != (ssize_t)(sizeof kData - 1) || memcmp(buf, kData, sizeof kData - 1) != 0) ++stolen;
    n = read(kept[i], buf, sizeof buf);
    if (n > 0)
      ++foreign;
    else if (n < 0 && errno != EAGAIN)
      ++foreign; /* the pair was torn down by someone */
  }
  printf("check stolen=%d foreign=%d\n", stolen, foreign);
}

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  char line[256];
  while (fgets(line, sizeof line, stdin)) {
    char cmd[64] = "";
    sscanf(line, "%63s", cmd);
    if (!strcmp(cmd, "open")) {
      conn = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
      if (PQstatus(conn) != CONNECTION_OK) return 3;
    } else if (!strcmp(cmd, "closefrom") || !strcmp(cmd, "close_range")) {
      list_descriptors();
      if (!strcmp(cmd, "closefrom"))
        closefrom(3);
      else if (close_range(3, ~0U, 0) != 0)
        return 6;
      take_over_numbers();
      printf("found");
      for (int i = 0; i < nfound; ++i) printf(" %d", found[i]);
      printf("\n");
    } else if (!strcmp(cmd, "check")) {
      check();
    } else {
      fprintf(stderr, "unknown command %s\n", cmd);
      return 2;
    }
    printf("ok %s 0\n", cmd); /* the e2e harness's "ok <command> <index>" */
  }
  return 0;
}
