<?php
// Three connections, each opened by its own function (one a class method):
// two closed, one kept in a global until exit (PHP's request shutdown then
// closes it: a leak of the program's). mysqli speaks the protocol itself
// (mysqlnd): socket level. The tests find each connect's line by its marker
// comment.
//
// With the argument "pause", each function that closes its connection first
// prints "<function> open" and waits for a line on stdin (the test takes a
// dump of the open connection meanwhile).
mysqli_report(MYSQLI_REPORT_ERROR | MYSQLI_REPORT_STRICT);

$kept = null;
$pause = ($argv[1] ?? '') === 'pause';

function env($name) { return getenv('CONNLEAK_TEST_MYSQL_' . $name); }

function check($m) {
  $row = $m->query('SELECT 41+1 AS v')->fetch_assoc();
  if ((int)$row['v'] !== 42) throw new Exception('bad value');
}

function hold($name) {
  global $pause;
  if (!$pause) return;
  echo "$name open\n";
  fgets(STDIN);
}

function report_totals() {
  $m = new mysqli(env('HOST'), env('USER'), env('PASSWORD'), env('DB'), (int)env('PORT'));  // CONNECT-report_totals
  check($m);
  hold('report_totals');
  $m->close();
}

class Cache {
  public function refresh() {
    $m = mysqli_connect(env('HOST'), env('USER'), env('PASSWORD'), env('DB'), (int)env('PORT'));  // CONNECT-Cache::refresh
    check($m);
    hold('Cache::refresh');
    mysqli_close($m);
  }
}

function open_session() {
  global $kept;
  $kept = new mysqli(env('HOST'), env('USER'), env('PASSWORD'), env('DB'), (int)env('PORT'));  // CONNECT-open_session
  check($kept);
}

report_totals();
(new Cache())->refresh();
open_session();
echo "done\n";
