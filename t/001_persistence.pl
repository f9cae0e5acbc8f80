
# Copyright (c) 2026, perfguard developers
#
# Persistence of perfguard's statistics across restarts:
# - a clean restart with perfguard.save = on keeps every statement entry
#   (same counters) and the stats_reset time of perfguard.info;
# - the stats file pg_stat/perfguard.stat exists only while the server is
#   stopped (written at clean shutdown, unlinked once loaded);
# - a truncated file, a garbage file and files of a foreign PG major or
#   format version each give a WARNING and an empty store, never a failed
#   start;
# - with perfguard.save = off nothing survives a restart.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'perfguard'\n");
$node->start;

my $statfile = $node->data_dir . '/pg_stat/perfguard.stat';

# The statements this test runs and looks for afterwards.  They read tables
# of their own: the query id ignores column aliases and constants, so
# "SELECT 7 AS marker" would share its entry with any "SELECT 1".
my $workload = join("\n",
	("SELECT count(*) FROM pfg_marker_one WHERE i > 2;") x 5,
	("SELECT i FROM pfg_marker_two WHERE i = 1;") x 3);

# Their entries, with every counter that must survive a restart unchanged.
my $snapshot_query = q{
	SELECT query, calls, rows, total_ms, min_ms, max_ms, first_seen, last_seen
	  FROM perfguard.statements
	 WHERE query LIKE 'SELECT%pfg_marker%'
	 ORDER BY query};
my $marker_count_query = q{
	SELECT count(*) FROM perfguard.statements
	 WHERE query LIKE 'SELECT%pfg_marker%'};

sub read_binary
{
	my ($path) = @_;
	open(my $fh, '<:raw', $path) or die "could not open $path: $!";
	local $/;
	my $bytes = <$fh>;
	close($fh);
	return $bytes;
}

sub write_binary
{
	my ($path, $bytes) = @_;
	open(my $fh, '>:raw', $path) or die "could not write $path: $!";
	print $fh $bytes;
	close($fh);
	return;
}

$node->safe_psql('postgres', 'CREATE EXTENSION perfguard');
$node->safe_psql('postgres', q{
	CREATE TABLE pfg_marker_one (i int);
	INSERT INTO pfg_marker_one SELECT generate_series(1, 10);
	CREATE TABLE pfg_marker_two (i int);
	INSERT INTO pfg_marker_two VALUES (1), (2);});
$node->safe_psql('postgres', 'SELECT perfguard.reset()');
$node->safe_psql('postgres', $workload);

my $calls = $node->safe_psql('postgres', q{
	SELECT string_agg(calls::text, ',' ORDER BY query)
	  FROM perfguard.statements
	 WHERE query LIKE 'SELECT%pfg_marker%'});
is($calls, '5,3', 'workload counted before the restart');

my $before = $node->safe_psql('postgres', $snapshot_query);
my $reset_before = $node->safe_psql('postgres', 'SELECT stats_reset FROM perfguard.info');
ok(!-e $statfile, 'no stats file while the server runs');

# Clean restart with perfguard.save = on (the default).
$node->stop;
ok(-s $statfile, 'clean shutdown writes pg_stat/perfguard.stat');
my $valid = read_binary($statfile);

my $offset = -s $node->logfile;
$node->start;
ok(!-e $statfile, 'stats file is removed once loaded');
is($node->safe_psql('postgres', $snapshot_query), $before,
	'statement entries survive a clean restart with the same counters');
is($node->safe_psql('postgres', 'SELECT stats_reset FROM perfguard.info'),
	$reset_before, 'stats_reset survives a clean restart');
ok(!$node->log_contains(qr/WARNING:.*perfguard/, $offset),
	'no perfguard warning when loading a valid file');

# Bad stats files: each is ignored with a WARNING and the server starts with
# an empty store.
my $header_len = 4 * 4;    # magic, pg_major, format, ntables (uint32 each)
cmp_ok(length($valid), '>', $header_len + 200, 'stats file holds entries');

my @bad_files = (
	[ 'truncated file', substr($valid, 0, length($valid) - 100), qr/truncat/ ],
	[ 'empty file', '', qr/truncat/ ],
	[
		'garbage file', "this is not perfguard data\n" x 64,
		qr/not a perfguard/
	],
	[
		'file from another PostgreSQL major version',
		substr($valid, 0, 4) . pack('L', 14) . substr($valid, 8),
		qr/incompatible/
	],
	[
		'file of another format version',
		substr($valid, 0, 8) . pack('L', 99) . substr($valid, 12),
		qr/incompatible/
	],);

foreach my $case (@bad_files)
{
	my ($name, $bytes, $reason) = @$case;

	$node->stop;
	write_binary($statfile, $bytes);
	$offset = -s $node->logfile;
	ok($node->start(fail_ok => 1), "$name: server starts");
	ok( $node->log_contains(
			qr/WARNING:.*perfguard.*perfguard\.stat.*$reason/, $offset),
		"$name: WARNING in the server log");
	is($node->safe_psql('postgres', $marker_count_query),
		'0', "$name: store is empty");
	isnt($node->safe_psql('postgres', 'SELECT stats_reset FROM perfguard.info'),
		$reset_before, "$name: stats_reset is not taken from the file");
	ok(!-e $statfile, "$name: bad file is removed");
}

# perfguard.save = off: a clean restart forgets everything.
$node->safe_psql('postgres', $workload);
is($node->safe_psql('postgres', $marker_count_query),
	'2', 'workload counted again');
$node->append_conf('postgresql.conf', "perfguard.save = off\n");
$node->reload;
ok( $node->poll_query_until(
		'postgres', "SELECT current_setting('perfguard.save')", 'off'),
	'perfguard.save = off is in effect');
$node->stop;
ok(!-e $statfile, 'perfguard.save = off: no stats file at shutdown');
$offset = -s $node->logfile;
$node->start;
is($node->safe_psql('postgres', $marker_count_query),
	'0', 'perfguard.save = off: store is empty after a restart');
ok(!$node->log_contains(qr/WARNING:.*perfguard/, $offset),
	'perfguard.save = off: no warning at start');

$node->stop;
done_testing();
