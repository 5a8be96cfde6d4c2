# Three connections from three named subs: two closed, one kept in a global
# until exit (Perl's global destruction then closes it: a leak of the program's).
use strict;
use warnings;
use DBI;

our $kept;

sub connect_db {
  my $dsn = "DBI:Pg:dbname=$ENV{CONNLEAK_TEST_PG_APP_DB};host=$ENV{CONNLEAK_TEST_PG_HOST};"
          . "port=$ENV{CONNLEAK_TEST_PG_PORT}";
  my $dbh = DBI->connect($dsn, $ENV{CONNLEAK_TEST_PG_APP_USER}, $ENV{CONNLEAK_TEST_PG_APP_PASSWORD},
                         {RaiseError => 1, PrintError => 0});
  my ($v) = $dbh->selectrow_array("SELECT 41+1");
  die "bad value" unless $v == 42;
  $dbh->do("SET application_name = 'perl'");
  return $dbh;
}

sub report_totals { my $dbh = connect_db(); $dbh->disconnect; }
sub refresh_cache { my $dbh = connect_db(); $dbh->disconnect; }
sub open_session  { $kept = connect_db(); }

report_totals();
refresh_cache();
open_session();
print "done\n";
