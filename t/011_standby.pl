
# Copyright (c) 2026, perfguard developers
#
# perfguard on a hot standby: preloaded on the primary and on a streaming
# standby, its views work on the standby and show the standby's own read
# statements (shared memory is per server), request scopes and the N+1
# detector work there, and perfguard never attempts a write: the standby's
# log has no ERROR, and its statistics survive a clean restart.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $primary = PostgreSQL::Test::Cluster->new('primary');
$primary->init(allows_streaming => 1);
$primary->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'perfguard'
perfguard.slow_query_ms = 0
perfguard.capture_parameters = on
perfguard.request_gap = '10s'
});
$primary->start;
$primary->safe_psql('postgres', q{
	CREATE EXTENSION perfguard;
	CREATE TABLE sb_author (id int PRIMARY KEY, name text);
	CREATE TABLE sb_book (id int PRIMARY KEY, author_id int REFERENCES sb_author(id));
	INSERT INTO sb_author SELECT g, 'a' || g FROM generate_series(1, 20) g;
	INSERT INTO sb_book SELECT g, g FROM generate_series(1, 20) g;
	ANALYZE;});
$primary->safe_psql('postgres', "SELECT count(*) FROM sb_book;\n" x 2);

$primary->backup('bk');
my $standby = PostgreSQL::Test::Cluster->new('standby');
$standby->init_from_backup($primary, 'bk', has_streaming => 1);
$standby->start;
$primary->wait_for_catchup($standby);

is($standby->safe_psql('postgres', 'SELECT pg_is_in_recovery()'),
	't', 'standby is in recovery');
my $offset = -s $standby->logfile;

# the standby's own reads
$standby->safe_psql('postgres', "SELECT count(*) FROM sb_book;\n" x 5);
is( $standby->safe_psql('postgres', q{
		SELECT sum(calls) FROM perfguard.statements
		 WHERE query = 'SELECT count(*) FROM sb_book'}),
	'5',
	'the standby counts its own statements, not the primary\'s');
is( $primary->safe_psql('postgres', q{
		SELECT sum(calls) FROM perfguard.statements
		 WHERE query = 'SELECT count(*) FROM sb_book'}),
	'2',
	'the primary keeps its own counts');

# an N+1 inside an explicit scope, on the standby
my $loop = "SELECT perfguard.begin_request('/standby/');\n"
  . "SELECT id, author_id FROM sb_book ORDER BY id LIMIT 6;\n"
  . join('', map { "SELECT name FROM sb_author WHERE id = $_;\n" } 1 .. 6)
  . "SELECT n_plus_one FROM perfguard.end_request();\n";
my $res = $standby->safe_psql('postgres', $loop);
like($res, qr/1$/, 'end_request() reports the N+1 on the standby');
is( $standby->safe_psql('postgres', q{
		SELECT route || ' ' || total_repeats || ' ' || (suggestion IS NOT NULL)
		  FROM perfguard.n_plus_one}),
	'/standby/ 6 true',
	'perfguard.n_plus_one on the standby, with its fix from the catalog');

# every view and report function is readable on the standby
foreach my $sql (
	'SELECT count(*) >= 0 FROM perfguard.statements',
	'SELECT count(*) >= 0 FROM perfguard.n_plus_one',
	'SELECT count(*) >= 0 FROM perfguard.duplicates',
	'SELECT count(*) >= 0 FROM perfguard.write_loops',
	'SELECT count(*) >= 0 FROM perfguard.requests',
	'SELECT count(*) >= 0 FROM perfguard.slow_queries',
	'SELECT count(*) >= 0 FROM perfguard.plan_findings',
	'SELECT count(*) >= 0 FROM perfguard.offset_pagination',
	'SELECT count(*) >= 0 FROM perfguard.findings',
	'SELECT count(*) >= 0 FROM perfguard.index_advice',
	'SELECT entries > 0 FROM perfguard.info',
	q{SELECT count(*) >= 0 FROM perfguard.advise('SELECT * FROM sb_book WHERE author_id = 3')},
	q{SELECT count(*) = 3 FROM perfguard.keyset_page('sb_book', 'id', 3)})
{
	my ($rc, $out, $err) = $standby->psql('postgres', $sql);
	ok($rc == 0 && $out eq 't', "standby: $sql") or diag($err);
}

# reset works on the standby (shared memory only)
$standby->safe_psql('postgres', 'SELECT perfguard.reset()');
is( $standby->safe_psql('postgres', q{
		SELECT count(*) FROM perfguard.statements
		 WHERE query = 'SELECT count(*) FROM sb_book'}),
	'0', 'reset() on the standby');

# still readable after more WAL arrives
$primary->safe_psql('postgres',
	'INSERT INTO sb_author SELECT g, \'b\' || g FROM generate_series(21, 40) g');
$primary->wait_for_catchup($standby);
$standby->safe_psql('postgres', "SELECT count(*) FROM sb_author;\n" x 3);
is( $standby->safe_psql('postgres', q{
		SELECT sum(calls) FROM perfguard.statements
		 WHERE query = 'SELECT count(*) FROM sb_author'}),
	'3', 'counting continues while WAL is replayed');

ok(!$standby->log_contains(qr/ERROR|FATAL|PANIC/, $offset),
	'no ERROR in the standby log: perfguard never tried to write')
  or diag(slurp_file($standby->logfile));

# a clean restart of the standby keeps its statistics
$standby->restart;
is( $standby->safe_psql('postgres', q{
		SELECT sum(calls) FROM perfguard.statements
		 WHERE query = 'SELECT count(*) FROM sb_author'}),
	'3', 'the standby saves and reloads its statistics');
ok(!$standby->log_contains(qr/WARNING:.*perfguard/, $offset),
	'no perfguard WARNING on the standby');

$standby->stop;
$primary->stop;
done_testing();
