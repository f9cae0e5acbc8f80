
# Copyright (c) 2026, perfguard developers
#
# kill -9 of the postmaster itself (not a backend: t/002_crash.pl does
# that).  perfguard may lose the statistics that were never saved (those
# counted since the last start: the stats file is read and removed at
# start-up and written only by a clean shutdown), but nothing else: the next
# start is clean (no perfguard WARNING, no stats file left behind or
# loaded), statements are counted again from zero, every view is readable,
# and the following clean restart keeps the new counts.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('pmkill');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'perfguard'
perfguard.save = on
});
$node->start;

my $statfile = $node->data_dir . '/pg_stat/perfguard.stat';

$node->safe_psql('postgres', q{
	CREATE EXTENSION perfguard;
	CREATE TABLE pk_saved (i int);
	CREATE TABLE pk_unsaved (i int);
	CREATE TABLE pk_after (i int);});

sub calls_of
{
	my ($table) = @_;
	return $node->safe_psql('postgres', qq{
		SELECT coalesce(sum(calls), 0) FROM perfguard.statements
		 WHERE query LIKE 'SELECT count(*) FROM $table%'});
}

# counted, then saved by a clean restart, then loaded again
$node->safe_psql('postgres', "SELECT count(*) FROM pk_saved;\n" x 3);
$node->restart;
is(calls_of('pk_saved'), '3', 'clean restart keeps the counts');
ok(!-e $statfile, 'the stats file is consumed at start-up');

# counted since this start, never saved
$node->safe_psql('postgres', "SELECT count(*) FROM pk_unsaved;\n" x 4);
is(calls_of('pk_unsaved'), '4', 'unsaved statements counted');

# a session in the middle of a statement when the postmaster dies
my $victim = $node->background_psql('postgres', on_error_stop => 0);
$victim->query_until(qr/sleeping/, "\\echo sleeping\nSELECT pg_sleep(30);\n");

my $offset = -s $node->logfile;
my $pid = $node->{_pid};
$node->kill9;
# the orphaned backends notice the postmaster's death and exit
for (my $i = 0; $i < 100 && kill(0, $pid); $i++)
{
	usleep(100_000);
}
eval { $victim->quit; };

# start again; the old shared memory may be in use for a moment longer
my $started = 0;
for (my $i = 0; $i < 30 && !$started; $i++)
{
	$started = $node->start(fail_ok => 1);
	sleep 1 unless $started;
}
ok($started, 'server starts again after kill -9 of the postmaster');

ok(!$node->log_contains(qr/WARNING:.*perfguard|perfguard.*WARNING/, $offset),
	'no perfguard WARNING at the start after the kill');
ok(!$node->log_contains(qr/perfguard.*(stats file|could not)/i, $offset),
	'no complaint about the stats file');
ok(!-e $statfile, 'the kill left no stats file');

# at most the unsaved statistics are gone: everything since the last start
is(calls_of('pk_unsaved'), '0', 'unsaved statistics are lost, nothing more');
is(calls_of('pk_saved'), '0',
	'statistics loaded at the last start were not saved again (expected)');

$node->safe_psql('postgres', "SELECT count(*) FROM pk_after;\n" x 2);
is(calls_of('pk_after'), '2', 'statements are counted after the restart');

foreach my $view (
	qw(statements info n_plus_one duplicates write_loops requests
	slow_queries plan_findings offset_pagination findings index_advice))
{
	my ($rc, $out, $err) =
	  $node->psql('postgres', "SELECT count(*) >= 0 FROM perfguard.$view");
	ok($rc == 0 && $out eq 't', "perfguard.$view readable after the kill")
	  or diag("perfguard.$view: $err");
}
is( $node->safe_psql('postgres',
		'SELECT entries >= 1 AND entries <= max_entries FROM perfguard.info'),
	't',
	'perfguard.info is consistent');

# and a clean restart after all that keeps what was counted since
$offset = -s $node->logfile;
$node->restart;
is(calls_of('pk_after'), '2', 'counts since the kill survive a clean restart');
ok(!$node->log_contains(qr/WARNING:.*perfguard/, $offset),
	'no perfguard warning at the clean restart');

$node->stop;
done_testing();
