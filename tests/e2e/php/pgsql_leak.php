<?php
// Three connections, each opened by its own function (one a class method):
// two closed, one kept in a global until exit (PHP's request shutdown then
// closes it: a leak of the program's). ext/pgsql calls libpq, and PHP loads
// its extensions with RTLD_DEEPBIND: pgsql.so binds to libpq and libpq to
// libc without the preload, which the shim's GOT rewrite redirects to its
// hooks. The tests find each connect's line by its marker comment.
//
// With the argument "pause", each function that closes its connection first
// prints "<function> open" and waits for a line on stdin (the test takes a
// dump of the open connection meanwhile).
$kept = null;
$pause = ($argv[1] ?? '') === 'pause';

function conninfo() {
  return sprintf("host=%s port=%s dbname=%s user=%s password=%s",
                 getenv('CONNLEAK_TEST_PG_HOST'), getenv('CONNLEAK_TEST_PG_PORT'),
                 getenv('CONNLEAK_TEST_PG_APP_DB'), getenv('CONNLEAK_TEST_PG_APP_USER'),
                 getenv('CONNLEAK_TEST_PG_APP_PASSWORD'));
}

function check($c) {
  if ($c === false) throw new Exception('connect failed');
  $row = pg_fetch_row(pg_query($c, 'SELECT 41+1'));
  if ((int)$row[0] !== 42) throw new Exception('bad value');
}

function hold($name) {
  global $pause;
  if (!$pause) return;
  echo "$name open\n";
  fgets(STDIN);
}

function report_totals() {
  $c = pg_connect(conninfo());  // CONNECT-report_totals
  check($c);
  hold('report_totals');
  pg_close($c);
}

class Cache {
  public function refresh() {
    $c = pg_connect(conninfo());  // CONNECT-Cache::refresh
    check($c);
    hold('Cache::refresh');
    pg_close($c);
  }
}

function open_session() {
  global $kept;
  $kept = pg_connect(conninfo());  // CONNECT-open_session
  check($kept);
}

report_totals();
(new Cache())->refresh();
open_session();
echo "done\n";
