<?php
// Three connections from three named functions: two closed, one kept in a
// global until exit (PHP's request shutdown then closes it: a leak of the
// program's). mysqli speaks the protocol itself (mysqlnd): socket level.
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

$kept = null;

function connect_db() {
  $m = new mysqli(getenv('CONNLEAK_TEST_MYSQL_HOST'), getenv('CONNLEAK_TEST_MYSQL_USER'),
                  getenv('CONNLEAK_TEST_MYSQL_PASSWORD'), getenv('CONNLEAK_TEST_MYSQL_DB'),
                  (int)getenv('CONNLEAK_TEST_MYSQL_PORT'));
  $row = $m->query('SELECT 41+1 AS v')->fetch_assoc();
  if ((int)$row['v'] !== 42) throw new Exception('bad value');
  return $m;
}

function report_totals() { $m = connect_db(); $m->close(); }
function refresh_cache() { $m = connect_db(); $m->close(); }
function open_session() { global $kept; $kept = connect_db(); }

report_totals();
refresh_cache();
open_session();
echo "done\n";
