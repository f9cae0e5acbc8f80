
# Copyright (c) 2026, perfguard developers
#
# perfguard under load, through pgbench:
#  - 50 concurrent clients with every detector on (plan sampling of every
#    statement, parameter capture, track = all, N+1 and duplicate guards at
#    'log'): no ERROR in pgbench's output or the server log, and the counters
#    add up exactly: calls of each statement of the script = transactions
#    x executions per transaction;
#  - the extended and the prepared protocol (-M extended, -M prepared)
#    driving a 6-lookup loop inside perfguard.begin_request('x'): one N+1
#    per transaction with exact total_repeats, and with fixed ids one
#    duplicate per transaction, and no N+1.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('bench');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
max_connections = 70
shared_preload_libraries = 'perfguard'
perfguard.slow_query_ms = 0
perfguard.capture_parameters = on
perfguard.track = all
perfguard.on_n_plus_one = 'log'
perfguard.on_duplicate = 'log'
perfguard.request_gap = '10s'
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION perfguard;
	CREATE TABLE pb_author (id int PRIMARY KEY, name text);
	CREATE TABLE pb_book (id int PRIMARY KEY, author_id int REFERENCES pb_author(id));
	CREATE TABLE pb_counter (id int PRIMARY KEY, n int NOT NULL DEFAULT 0);
	INSERT INTO pb_author SELECT g, 'a' || g FROM generate_series(1, 1000) g;
	INSERT INTO pb_book SELECT g, g FROM generate_series(1, 1000) g;
	INSERT INTO pb_counter SELECT g FROM generate_series(1, 1000) g;
	ANALYZE;});

my $dir = PostgreSQL::Test::Utils::tempdir;

# 6 lookups of distinct ids after a parent query, one write, in a scope
my $loop = q{\set base random(1, 990)
\set i2 :base + 1
\set i3 :base + 2
\set i4 :base + 3
\set i5 :base + 4
\set i6 :base + 5
SELECT perfguard.begin_request('ROUTE');
SELECT id, author_id FROM pb_book WHERE id >= :base ORDER BY id LIMIT 6;
SELECT name FROM pb_author WHERE id = :base;
SELECT name FROM pb_author WHERE id = :i2;
SELECT name FROM pb_author WHERE id = :i3;
SELECT name FROM pb_author WHERE id = :i4;
SELECT name FROM pb_author WHERE id = :i5;
SELECT name FROM pb_author WHERE id = :i6;
UPDATE pb_counter SET n = n + 1 WHERE id = :base;
SELECT perfguard.end_request();
};

# the same lookup once per row of a 6-row parent, with one fixed id: a loop
# over one value, an N+1 with one distinct parameter set and duplicates
my $dups = q{SELECT perfguard.begin_request('ROUTE');
SELECT id, author_id FROM pb_book WHERE id >= 7 ORDER BY id LIMIT 6;
SELECT name FROM pb_author WHERE id = 7;
SELECT name FROM pb_author WHERE id = 7;
SELECT name FROM pb_author WHERE id = 7;
SELECT name FROM pb_author WHERE id = 7;
SELECT name FROM pb_author WHERE id = 7;
SELECT name FROM pb_author WHERE id = 7;
SELECT perfguard.end_request();
};

sub script
{
	my ($name, $text, $route) = @_;
	(my $t = $text) =~ s/ROUTE/$route/g;
	my $f = "$dir/$name.sql";
	append_to_file($f, $t);
	return $f;
}

# run pgbench; returns the number of transactions it processed
sub bench
{
	my ($name, $file, @args) = @_;
	my ($stdout, $stderr);
	my $ok = IPC::Run::run(
		[
			'pgbench', '-n', '-h', $node->host, '-p', $node->port,
			'-f', $file, @args, 'postgres'
		],
		'>', \$stdout, '2>', \$stderr);
	ok($ok, "$name: pgbench exits 0") or diag("$stdout\n$stderr");
	unlike("$stdout\n$stderr", qr/ERROR|error:|aborted/i,
		"$name: no error in pgbench output")
	  or diag("$stdout\n$stderr");
	my ($done) = $stdout =~ /number of transactions actually processed: (\d+)/;
	return $done // -1;
}

sub q1
{
	return $node->safe_psql('postgres', shift);
}

my $offset = -s $node->logfile;

# ---- 50 clients, every detector on ----
$node->safe_psql('postgres', 'SELECT perfguard.reset()');
my $t = bench('50 clients', script('loop50', $loop, 'bench'),
	'-c', '50', '-j', '2', '-t', '20');
is($t, 1000, '50 clients x 20 transactions processed');
is( q1(q{SELECT sum(calls) FROM perfguard.statements
		 WHERE query = 'SELECT name FROM pb_author WHERE id = $1'}),
	$t * 6, 'lookup calls = transactions x 6');
is( q1(q{SELECT sum(calls) FROM perfguard.statements
		 WHERE query LIKE 'UPDATE pb_counter SET n = n + $1 WHERE id = $2'}),
	$t, 'UPDATE calls = transactions');
is( q1(q{SELECT sum(calls) FROM perfguard.statements
		 WHERE query LIKE 'SELECT id, author_id FROM pb_book%'}),
	$t, 'parent query calls = transactions');
is(q1('SELECT sum(n) FROM pb_counter'), $t, 'every UPDATE ran');
is( q1(q{SELECT occurrences || ' ' || total_repeats || ' ' || max_repeats
		   FROM perfguard.n_plus_one WHERE route = 'bench'}),
	"$t " . ($t * 6) . ' 6',
	'one N+1 per transaction, 6 repeats each, none lost or mixed up');
is( q1(q{SELECT requests || ' ' || queries || ' ' || n_plus_one_requests
		   FROM perfguard.requests WHERE route = 'bench'}),
	"$t " . ($t * 8) . " $t",
	'perfguard.requests: every request with its 8 queries');

# ---- extended and prepared protocol ----
foreach my $mode ('extended', 'prepared')
{
	$node->safe_psql('postgres', 'SELECT perfguard.reset()');
	my $n = bench("-M $mode loop", script("loop_$mode", $loop, 'x'),
		'-M', $mode, '-c', '4', '-j', '2', '-t', '50');
	is($n, 200, "-M $mode: 200 transactions");
	is( q1(q{SELECT occurrences || ' ' || total_repeats || ' ' || max_repeats
			  || ' ' || max_distinct_params
			   FROM perfguard.n_plus_one WHERE route = 'x'}),
		"$n " . ($n * 6) . ' 6 6',
		"-M $mode: N+1 for route x with exact total_repeats");
	is( q1(q{SELECT sum(calls) FROM perfguard.statements
			 WHERE query = 'SELECT name FROM pb_author WHERE id = $1'}),
		$n * 6, "-M $mode: lookup calls = transactions x 6");
	is(q1(q{SELECT count(*) FROM perfguard.duplicates WHERE route = 'x'}),
		'0', "-M $mode: distinct ids make no duplicate");

	$node->safe_psql('postgres', 'SELECT perfguard.reset()');
	$n = bench("-M $mode dups", script("dups_$mode", $dups, 'd'),
		'-M', $mode, '-c', '4', '-j', '2', '-t', '25');
	is($n, 100, "-M $mode: 100 transactions");
	is( q1(q{SELECT occurrences || ' ' || total_duplicates || ' ' || max_duplicates
			   FROM perfguard.duplicates WHERE route = 'd'}),
		"$n " . ($n * 5) . ' 6',
		"-M $mode: one duplicate per transaction (5 extra executions of 6)");
	is(q1(q{SELECT count(*) || ' ' || max(max_distinct_params) || ' ' || max(max_repeats)
		  FROM perfguard.n_plus_one WHERE route = 'd'}),
		'1 1 6', "-M $mode: one fixed id once per parent row is an N+1 of one value");
	like(
		q1(q{SELECT example_params FROM perfguard.duplicates WHERE route = 'd'}),
		qr/7/, "-M $mode: example parameters captured");
}

ok(!$node->log_contains(qr/ERROR|PANIC|terminated by signal/, $offset),
	'no ERROR in the server log')
  or diag(slurp_file($node->logfile));
ok($node->log_contains(qr/N\+1|n_plus_one|duplicate/i, $offset),
	'the log guards reported (LOG level)');

$node->stop;
done_testing();
