# Three connections from three named subs: two closed, one kept in a global
# until exit (Perl's global destruction then closes it: a leak of the program's).
# One program for both DBD drivers: `perl dbi_leak.pl mariadb` or `... pg`;
# with `keep-all` after the driver, the two subs that close theirs keep them
# too (three leaks: the exit report then shows each connection's Perl frames,
# it lists only connections still open or flagged).
# The end-of-line markers are where tests/e2e/runtime_test.cpp expects
# each connection's Perl frames.
use strict;
use warnings;
use DBI;

my $which = shift // die "usage: $0 mariadb|pg [keep-all]\n";
my $keep_all = (shift // '') eq 'keep-all';
my %drivers = (
  mariadb => sub {
    ("DBI:MariaDB:database=$ENV{CONNLEAK_TEST_MYSQL_DB};host=$ENV{CONNLEAK_TEST_MYSQL_HOST};"
       . "port=$ENV{CONNLEAK_TEST_MYSQL_PORT}",
     $ENV{CONNLEAK_TEST_MYSQL_USER}, $ENV{CONNLEAK_TEST_MYSQL_PASSWORD}, "SET NAMES utf8mb4")
  },
  pg => sub {
    ("DBI:Pg:dbname=$ENV{CONNLEAK_TEST_PG_APP_DB};host=$ENV{CONNLEAK_TEST_PG_HOST};"
       . "port=$ENV{CONNLEAK_TEST_PG_PORT}",
     $ENV{CONNLEAK_TEST_PG_APP_USER}, $ENV{CONNLEAK_TEST_PG_APP_PASSWORD},
     "SET application_name = 'perl'")
  },
);
my ($dsn, $user, $password, $setup) = ($drivers{$which} // die "unknown driver $which\n")->();

our ($kept, @also_kept);

sub connect_db {
  my $dbh = DBI->connect($dsn, $user, $password, {RaiseError => 1, PrintError => 0});  # CONNECT-LINE
  my ($v) = $dbh->selectrow_array("SELECT 41+1");
  die "bad value" unless $v == 42;
  $dbh->do($setup);
  return $dbh;
}

sub done_with { my $dbh = shift; $keep_all ? push(@also_kept, $dbh) : $dbh->disconnect; }

sub report_totals { my $dbh = connect_db(); done_with($dbh); }  # TOTALS-LINE
sub refresh_cache { my $dbh = connect_db(); done_with($dbh); }  # REFRESH-LINE
sub open_session  { $kept = connect_db(); }  # SESSION-LINE

report_totals();  # CALL-TOTALS
refresh_cache();  # CALL-REFRESH
open_session();  # CALL-SESSION
print "done\n";
