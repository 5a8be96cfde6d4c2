<?php
// Three connections from three named functions: two closed, one kept in a
// global until exit (PHP's request shutdown then closes it: a leak of the
// program's). ext/pgsql calls libpq, and PHP loads its extensions with
// RTLD_DEEPBIND: pgsql.so binds to libpq and libpq to libc without the
// preload, which the shim's GOT rewrite redirects to its hooks.
$kept = null;

function connect_db() {
  $c = pg_connect(sprintf("host=%s port=%s dbname=%s user=%s password=%s",
                          getenv('CONNLEAK_TEST_PG_HOST'), getenv('CONNLEAK_TEST_PG_PORT'),
                          getenv('CONNLEAK_TEST_PG_APP_DB'), getenv('CONNLEAK_TEST_PG_APP_USER'),
                          getenv('CONNLEAK_TEST_PG_APP_PASSWORD')));
  if ($c === false) throw new Exception('connect failed');
  $row = pg_fetch_row(pg_query($c, 'SELECT 41+1'));
  if ((int)$row[0] !== 42) throw new Exception('bad value');
  return $c;
}

function report_totals() { $c = connect_db(); pg_close($c); }
function refresh_cache() { $c = connect_db(); pg_close($c); }
function open_session() { global $kept; $kept = connect_db(); }

report_totals();
refresh_cache();
open_session();
echo "done\n";
