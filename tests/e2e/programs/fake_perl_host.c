// A C program that exports the variables by which the shim recognises a Perl
// interpreter (PL_revision, PL_version, PL_subversion, PL_bincompat_options,
// PL_thr_key), set from its command line, with no interpreter behind them:
// its thread key holds nothing. Whether its report carries a "perl" stack
// (empty) or none at all shows the shim's version gate: frames are read only
// from a perl of exactly the version and options the reader was built for.
//   fake_perl_host VERSION OPTIONS   (e.g. 5.36.0 " HAS_TIMES MULTIPLICITY ...")
// One libpq connection (CONNLEAK_TEST_PG_CONNINFO), kept until exit.
#include <libpq-fe.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

unsigned char PL_revision, PL_version, PL_subversion;
char PL_bincompat_options[1024];
pthread_key_t PL_thr_key;

int main(int argc, char** argv) {
  unsigned revision, version, subversion;
  if (argc != 3 || sscanf(argv[1], "%u.%u.%u", &revision, &version, &subversion) != 3 ||
      strlen(argv[2]) >= sizeof(PL_bincompat_options)) {
    fprintf(stderr, "usage: %s REVISION.VERSION.SUBVERSION BINCOMPAT_OPTIONS\n", argv[0]);
    return 2;
  }
  PL_revision = (unsigned char)revision;
  PL_version = (unsigned char)version;
  PL_subversion = (unsigned char)subversion;
  strcpy(PL_bincompat_options, argv[2]);
  if (pthread_key_create(&PL_thr_key, NULL) != 0) return 1;
  PGconn* kept = PQconnectdb(getenv("CONNLEAK_TEST_PG_CONNINFO"));
  if (PQstatus(kept) != CONNECTION_OK) {
    fprintf(stderr, "connect failed\n");
    return 1;
  }
  printf("done\n");
  return 0;
}
