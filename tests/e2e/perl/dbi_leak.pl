# Three connections from three named subs: two closed, one kept in a global
# until exit (Perl's global destruction then closes it: a leak of the program's).
# One program for both DBD drivers: `perl dbi_leak.pl mariadb` or `... pg`.
use strict;
use warnings;
use DBI;

my $which = shift // die "usage: $0 mariadb|pg\n";
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

our $kept;

sub connect_db {
  my $dbh = DBI->connect($dsn, $user, $password, {RaiseError => 1, PrintError => 0});
  my ($v) = $dbh->selectrow_array("SELECT 41+1");
  die "bad value" unless $v == 42;
  $dbh->do($setup);
  return $dbh;
}

sub report_totals { my $dbh = connect_db(); $dbh->disconnect; }
sub refresh_cache { my $dbh = connect_db(); $dbh->disconnect; }
sub open_session  { $kept = connect_db(); }

report_totals();
refresh_cache();
open_session();
print "done\n";
