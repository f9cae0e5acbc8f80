
# Copyright (c) 2026, perfguard developers
#
# A backend killed with SIGKILL in the middle of a statement makes the
# postmaster reinitialise shared memory.  perfguard must come back with it:
# a fresh, consistent store (no stale stats file is loaded, none is written
# by the crash), new statements counted, every view readable, and a clean
# restart afterwards that keeps what was counted since.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'perfguard'
restart_after_crash = on
});
$node->start;

my $statfile = $node->data_dir . '/pg_stat/perfguard.stat';

# Marker statements read tables of their own (the query id ignores aliases
# and constants, so a bare "SELECT 1" would share their entry).
$node->safe_psql('postgres', q{
	CREATE EXTENSION perfguard;
	CREATE TABLE pfg_before_crash (i int);
	CREATE TABLE pfg_after_crash (i int);});
$node->safe_psql('postgres',
	"SELECT count(*) FROM pfg_before_crash;\n" x 4);

sub calls_of
{
	my ($marker) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(sum(calls), 0) FROM perfguard.statements
		 WHERE query LIKE 'SELECT%$marker%'});
}

is(calls_of('pfg_before_crash'), '4', 'statements counted before the crash');

# A session that sleeps inside a statement, perfguard's hooks active.
my $victim = $node->background_psql('postgres', on_error_stop => 0);
my $pid = $victim->query_safe('SELECT pg_backend_pid()');
$victim->query_until(qr/sleeping/, qq{\\echo sleeping
SELECT pg_sleep(600) AS pfg_victim;
});
ok( $node->poll_query_until(
		'postgres',
		"SELECT wait_event FROM pg_stat_activity WHERE pid = $pid",
		'PgSleep'),
	'victim backend is inside its statement');

my $offset = -s $node->logfile;
ok(kill('KILL', $pid), 'victim backend killed with SIGKILL');
# psql has lost its connection; \q may meet a closed pipe.
eval { $victim->quit; };

ok( $node->poll_query_until(
		'postgres', 'SELECT 1', '1'),
	'server accepts connections again after the crash');
ok( $node->log_contains(
		qr/all server processes terminated; reinitializing/, $offset),
	'postmaster reinitialised shared memory');
ok(!-e $statfile, 'the crash wrote no stats file');

# A fresh store: nothing from before the crash, new statements counted.
is(calls_of('pfg_before_crash'), '0', 'store is empty after the crash');
$node->safe_psql('postgres',
	"SELECT count(*) FROM pfg_after_crash;\n" x 3);
is(calls_of('pfg_after_crash'), '3', 'statements counted after the crash');

foreach my $view (qw(statements info))
{
	my ($rc, $out, $err) =
	  $node->psql('postgres', "SELECT count(*) >= 0 FROM perfguard.$view");
	ok($rc == 0 && $out eq 't', "perfguard.$view readable after the crash")
	  or diag("perfguard.$view: $err");
}
like(
	$node->safe_psql('postgres',
		'SELECT entries >= 1 AND entries <= max_entries FROM perfguard.info'),
	qr/^t$/,
	'perfguard.info is consistent after the crash');

# A clean restart after the crash keeps what was counted since.
$offset = -s $node->logfile;
$node->restart;
is(calls_of('pfg_after_crash'), '3',
	'counts since the crash survive a clean restart');
ok(!$node->log_contains(qr/WARNING:.*perfguard/, $offset),
	'no perfguard warning at the clean restart');

$node->stop;
done_testing();
