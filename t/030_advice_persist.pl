
# Copyright (c) 2026, perfguard developers
#
# Persistence of the remembered index advice (the closed loop of
# perfguard.index_advice) across restarts:
# - a clean restart with perfguard.save = on keeps the advice: an advice that
#   was applied before the restart is still shown as applied, with the same
#   calls since the advice and the same before/after comparison;
# - pg_stat/perfguard_advice.stat exists only while the server is stopped;
# - a garbage file gives a WARNING and no remembered advice, never a failed
#   start;
# - with perfguard.save = off no advice file is written.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'perfguard'\n");
$node->start;

my $advicefile = $node->data_dir . '/pg_stat/perfguard_advice.stat';

$node->safe_psql('postgres', 'CREATE EXTENSION perfguard');
$node->safe_psql('postgres', q{
	CREATE TABLE adv_events (id int PRIMARY KEY, account_id int, payload text);
	INSERT INTO adv_events
	  SELECT g, g % 5000, repeat('x', 40) FROM generate_series(1, 50000) g;
	VACUUM ANALYZE adv_events;});
$node->safe_psql('postgres', 'SELECT perfguard.reset()');

my $lookup = 'SELECT count(*) FROM adv_events WHERE account_id = 7;';
$node->safe_psql('postgres', join("\n", ($lookup) x 4));

my $ddl = $node->safe_psql('postgres', q{
	SELECT ddl FROM perfguard.index_advice
	 WHERE kind = 'missing' AND table_name = 'adv_events'});
is($ddl, 'CREATE INDEX CONCURRENTLY ON public.adv_events (account_id)',
	'the lookup is advised an index');
$node->safe_psql('postgres', $ddl);
$node->safe_psql('postgres', join("\n", ($lookup) x 3));

my $applied_query = q{
	SELECT applied, applied_index, calls_after, actual_improvement > 0,
	       round(mean_ms_before::numeric, 6), round(mean_ms_after::numeric, 6)
	  FROM perfguard.index_advice
	 WHERE kind = 'missing' AND table_name = 'adv_events'};
my $before = $node->safe_psql('postgres', $applied_query);
like($before, qr/^t\|adv_events_account_id_idx\|3\|t\|/,
	'applied before the restart, 3 calls since the advice, faster');
ok(!-e $advicefile, 'no advice file while the server runs');

$node->stop;
ok(-s $advicefile, 'clean shutdown writes pg_stat/perfguard_advice.stat');
my $offset = -s $node->logfile;
$node->start;
ok(!-e $advicefile, 'advice file is removed once loaded');
is($node->safe_psql('postgres', $applied_query), $before,
	'the applied advice survives a clean restart with the same comparison');
ok(!$node->log_contains(qr/WARNING:.*perfguard/, $offset),
	'no perfguard warning when loading a valid file');

# A garbage file: WARNING, nothing remembered (the index exists, so the
# statement is not advised again and no row is left).
$node->stop;
open(my $fh, '>:raw', $advicefile) or die "could not write $advicefile: $!";
print $fh "this is not perfguard advice\n" x 64;
close($fh);
$offset = -s $node->logfile;
ok($node->start(fail_ok => 1), 'garbage advice file: server starts');
ok( $node->log_contains(
		qr/WARNING:.*perfguard_advice\.stat.*not a perfguard advice file/,
		$offset),
	'garbage advice file: WARNING in the server log');
is( $node->safe_psql(
		'postgres', q{
	SELECT count(*) FROM perfguard.index_advice
	 WHERE kind = 'missing' AND table_name = 'adv_events'}),
	'0',
	'garbage advice file: no remembered advice');
ok(!-e $advicefile, 'garbage advice file is removed');

# perfguard.save = off: no file at shutdown.
$node->append_conf('postgresql.conf', "perfguard.save = off\n");
$node->restart;
$node->stop;
ok(!-e $advicefile, 'perfguard.save = off: no advice file at shutdown');

done_testing();
