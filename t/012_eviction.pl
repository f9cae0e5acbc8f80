
# Copyright (c) 2026, perfguard developers
#
# perfguard.max_statements at its minimum (100) under 2,000 distinct
# statements, sent by four sessions at once while a fifth reads the views
# and a sixth resets: no statement fails, the store never holds more than
# max_entries, eviction is counted in dropped_entries, and the survivors'
# counters are whole.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;

my $node = PostgreSQL::Test::Cluster->new('evict');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'perfguard'
perfguard.max_statements = 100
perfguard.track = all
perfguard.capture_parameters = on
perfguard.n_plus_one_threshold = 2
perfguard.request_gap = '10s'
});
$node->start;

is($node->safe_psql('postgres', 'SHOW perfguard.max_statements'),
	'100', 'max_statements at its minimum');

# Two tables of 1,000 columns: "SELECT cN FROM ev_wT" is a distinct
# fingerprint for each column (the query id ignores constants and aliases,
# not the column read).
my $cols = join(', ', map { "c$_ int" } 1 .. 1000);
$node->safe_psql('postgres', qq{
	CREATE EXTENSION perfguard;
	CREATE TABLE ev_w1 ($cols);
	CREATE TABLE ev_w2 ($cols);
	INSERT INTO ev_w1 (c1) VALUES (1);
	INSERT INTO ev_w2 (c1) VALUES (1);});

# four writers of 500 distinct statements each
my @runs;
my @outs;
for my $w (0 .. 3)
{
	my $sql = '';
	for my $i (1 .. 500)
	{
		my $n = $w * 500 + $i;
		my $t = $n <= 1000 ? 1 : 2;
		my $c = ($n - 1) % 1000 + 1;
		$sql .= "SELECT c$c FROM ev_w$t WHERE c1 = $i;\n";
	}
	my ($out, $err) = ('', '');
	push @outs, [ \$out, \$err ];
	push @runs,
	  IPC::Run::start(
		[
			'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
			$node->connstr('postgres'), '-f', '-'
		],
		'<', \$sql, '>', \$out, '2>', \$err);
}

# meanwhile: read the views, and reset once
my $reader_sql = join('',
	map {
		"SELECT count(*) FROM perfguard.statements;\n"
		  . "SELECT entries <= max_entries FROM perfguard.info;\n"
		  . "SELECT count(*) FROM perfguard.findings;\n"
	} 1 .. 20);
my ($rout, $rerr) = ('', '');
my $reader = IPC::Run::start(
	[
		'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d',
		$node->connstr('postgres'), '-f', '-'
	],
	'<', \$reader_sql, '>', \$rout, '2>', \$rerr);
$node->safe_psql('postgres', 'SELECT perfguard.reset()');

my $all_ok = 1;
for my $i (0 .. $#runs)
{
	$runs[$i]->finish;
	if ($runs[$i]->result != 0 || ${ $outs[$i][1] } ne '')
	{
		$all_ok = 0;
		diag("writer $i: " . ${ $outs[$i][1] });
	}
}
ok($all_ok, '2,000 distinct statements from four sessions: no error');
$reader->finish;
ok($reader->result == 0 && $rerr eq '', 'views readable during eviction')
  or diag($rerr);
unlike($rout, qr/^f$/m, 'entries never above max_entries while evicting');

# one more pass of 300 distinct statements, after the reset
my $sql = join('', map { "SELECT c$_ FROM ev_w2 WHERE c1 = 0;\n" } 1 .. 300);
$node->safe_psql('postgres', $sql);

my ($entries, $max, $dropped) = split(/\|/,
	$node->safe_psql('postgres',
		'SELECT entries, max_entries, dropped_entries FROM perfguard.info'));
cmp_ok($max, '==', 100, 'max_entries is 100');
cmp_ok($entries, '<=', $max, "entries ($entries) <= max_entries");
cmp_ok($entries, '>', 0, 'the store is not empty');
cmp_ok($dropped, '>', 0, "dropped_entries counts the evictions ($dropped)");

# the most recent statements survive, each with its one call
is( $node->safe_psql('postgres', q{
		SELECT count(*) > 0 AND bool_and(calls = 1)
		  FROM perfguard.statements WHERE query LIKE 'SELECT c% FROM ev_w2 WHERE c1 = $1'}),
	't',
	'surviving entries have whole counters');
is($node->safe_psql('postgres', 'SELECT count(*) FROM perfguard.statements'),
	$entries, 'perfguard.statements shows exactly the entries in use');

ok(!$node->log_contains(qr/ERROR|PANIC|terminated by signal/),
	'no ERROR in the server log');

$node->stop;
done_testing();
