
# Copyright (c) 2026, perfguard developers
#
# A backend killed in the middle of a request whose statements run on
# several backends (what a transaction-mode pooler does; issue 15).  The
# request is identified by the trace id of its traceparent tag; its
# statements count toward it whichever backend runs them, and it ends
# request_gap after its last statement on any backend.  When one of its
# backends dies:
#  - pg_terminate_backend() between two statements, while another backend
#    goes on with the request: one request with every statement, the N+1
#    with its full count (the kill neither ends nor splits the request);
#  - pg_terminate_backend() of the only backend of a request: the request
#    ends by the idle gap with the statements that backend ran;
#  - pg_terminate_backend() inside a statement of the request (pg_sleep),
#    another backend going on: one request, the N+1 complete;
#  - other sessions are never blocked (no lock left held: every statement
#    below runs under a timeout), the views stay readable, perfguard.info
#    counts nothing dropped, reset() works, and the table keeps working:
#    20 requests spread over two backends afterwards are counted exactly;
#  - SIGKILL of a backend mid-request: the postmaster restarts every
#    process and perfguard's shared memory starts empty; afterwards a
#    request over two backends is counted exactly and the views are
#    readable.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

# BackgroundPsql notes every query and its output: some 2,000 lines here.
# Keep the TAP output to the assertions.
{
	no warnings 'redefine';
	*PostgreSQL::Test::BackgroundPsql::note = sub { };
}

my $gap_ms = 1000;

my $node = PostgreSQL::Test::Cluster->new('reqkill');
$node->init;
$node->append_conf(
	'postgresql.conf', qq{
shared_preload_libraries = 'perfguard'
perfguard.request_gap = '${gap_ms}ms'
perfguard.save = off
restart_after_crash = on
});
$node->start;
$node->safe_psql('postgres', q{
	CREATE EXTENSION perfguard;
	CREATE TABLE kb_author (id int PRIMARY KEY, name text);
	CREATE TABLE kb_book (id int PRIMARY KEY, author_id int REFERENCES kb_author(id));
	INSERT INTO kb_author SELECT g, 'a' || g FROM generate_series(1, 100) g;
	INSERT INTO kb_book SELECT g, g FROM generate_series(1, 100) g;
	ANALYZE;});

my $span = 0;

# the sqlcommenter comment of one statement of request $trace on $route
sub tag
{
	my ($route, $trace) = @_;
	$span++;
	return sprintf("/*route='%s',traceparent='00-%s-%016x-01'*/",
		$route, $trace, $span);
}

sub list_sql
{
	my ($route, $trace) = @_;
	return 'SELECT id, author_id FROM kb_book ORDER BY id LIMIT 10 '
	  . tag($route, $trace) . ';';
}

sub lookup_sql
{
	my ($route, $trace, $id) = @_;
	return "SELECT name FROM kb_author WHERE id = $id "
	  . tag($route, $trace) . ';';
}

# a query through a fresh connection that must finish within 60 s: a lock
# left held by a dead backend would make it hang
sub q_timed
{
	my ($sql) = @_;
	my ($out, $err, $timed_out) = ('', '', 0);
	my $rc = $node->psql(
		'postgres', $sql,
		stdout => \$out,
		stderr => \$err,
		timeout => 60,
		timed_out => \$timed_out);
	return { rc => $rc, out => $out, err => $err, timed_out => $timed_out };
}

sub q1
{
	my ($sql) = @_;
	my $r = q_timed($sql);
	die "query timed out: $sql" if $r->{timed_out};
	die "query failed: $sql\n$r->{err}" if $r->{rc} != 0;
	return $r->{out};
}

sub requests_of
{
	my ($route) = @_;
	return q1(
		qq{SELECT coalesce(sum(requests), 0) || ' ' || coalesce(sum(queries), 0)
		          || ' ' || coalesce(max(max_queries), 0)
		     FROM perfguard.requests WHERE route = '$route'});
}

sub n_plus_one_of
{
	my ($route) = @_;
	return q1(
		qq{SELECT count(*) || ' ' || coalesce(sum(occurrences), 0) || ' '
		          || coalesce(sum(total_repeats), 0) || ' ' || coalesce(max(max_repeats), 0)
		     FROM perfguard.n_plus_one WHERE route = '$route'});
}

# let every open request pass request_gap
sub settle
{
	usleep(($gap_ms + 1000) * 1000);
}

sub terminate
{
	my ($pid) = @_;
	is(q1("SELECT pg_terminate_backend($pid, 30000)"),
		't', "pg_terminate_backend($pid) returned");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT count(*) FROM pg_stat_activity WHERE pid = $pid", '0'),
		"backend $pid is gone");
}

my $offset = -s $node->logfile;

# ---- 1. one request on two backends; one of them terminated between two
# statements, the other goes on with the request
{
	my $route = 'kill-shared';
	my $trace = '4bf92f3577b34da6a3ce929d0e0e4701';
	my $a = $node->background_psql('postgres', on_error_stop => 0);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	my $apid = $a->query_safe('SELECT pg_backend_pid()');
	$a->query_safe(list_sql($route, $trace));
	for my $i (1 .. 6)
	{
		($i % 2 ? $a : $b)->query_safe(lookup_sql($route, $trace, $i));
	}
	terminate($apid);
	eval { $a->quit; };

	# another client's request meanwhile, on its own backend: not blocked
	my $r = q_timed(
		join("\n",
			list_sql('kill-other', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01'),
			map { lookup_sql('kill-other', 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa01', $_) }
			  (11 .. 16)));
	ok(!$r->{timed_out} && $r->{rc} == 0,
		'another session runs its request right after the kill')
	  or diag($r->{err});

	for my $i (7 .. 10)
	{
		$b->query_safe(lookup_sql($route, $trace, $i));
	}
	$b->quit;
	settle();
	is(requests_of($route), '1 11 11',
		'shared request, one backend terminated: one request with all 11 queries');
	is(n_plus_one_of($route), '1 1 10 10',
		'its N+1 once, with all 10 repeats from both backends');
	is(requests_of('kill-other'), '1 7 7', 'the other request is whole');
	is(n_plus_one_of('kill-other'), '1 1 6 6', 'and its N+1 too');
}

# ---- 2. a request on one backend only, terminated: ends by the idle gap
# with the statements that backend ran
{
	my $route = 'kill-alone';
	my $trace = '4bf92f3577b34da6a3ce929d0e0e4702';
	my $a = $node->background_psql('postgres', on_error_stop => 0);
	my $apid = $a->query_safe('SELECT pg_backend_pid()');
	$a->query_safe(list_sql($route, $trace));
	$a->query_safe(lookup_sql($route, $trace, $_)) for (21 .. 26);
	terminate($apid);
	eval { $a->quit; };
	settle();
	is(requests_of($route), '1 7 7',
		'request of a terminated backend: ended by the gap, its 7 queries counted');
	is(n_plus_one_of($route), '1 1 6 6', 'its N+1 counted');
}

# ---- 3. terminated inside a statement of the request; another backend
# goes on with it
{
	my $route = 'kill-running';
	my $trace = '4bf92f3577b34da6a3ce929d0e0e4703';
	my $a = $node->background_psql('postgres', on_error_stop => 0);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	my $apid = $a->query_safe('SELECT pg_backend_pid()');
	$a->query_safe(list_sql($route, $trace));
	$a->query_safe(lookup_sql($route, $trace, $_)) for (31 .. 35);
	$a->query_until(qr/sleeping/,
		"\\echo sleeping\nSELECT pg_sleep(60) " . tag($route, $trace) . ";\n");
	ok( $node->poll_query_until(
			'postgres',
			"SELECT wait_event FROM pg_stat_activity WHERE pid = $apid",
			'PgSleep'),
		'the backend is inside a statement of the request');
	terminate($apid);
	eval { $a->quit; };
	$b->query_safe(lookup_sql($route, $trace, $_)) for (36 .. 40);
	$b->quit;
	settle();
	# The statement cut by the termination may count as a query of the
	# request or not (a statement cancelled by statement_timeout does count
	# today); everything else is exact.
	like(requests_of($route), qr/^1 (11 11|12 12)$/,
		'terminated mid-statement: one request with every completed query');
	is(n_plus_one_of($route), '1 1 10 10',
		'its N+1 once, with all 10 repeats');
}

# ---- the table after the kills
{
	is(q1('SELECT dropped_events FROM perfguard.info'),
		'0', 'perfguard.info: nothing dropped');
	foreach my $view (
		qw(requests n_plus_one duplicates write_loops n_plus_one_sequences
		findings info))
	{
		my $r = q_timed("SELECT count(*) >= 0 FROM perfguard.$view");
		ok(!$r->{timed_out} && $r->{rc} == 0 && $r->{out} eq 't',
			"perfguard.$view readable after the kills")
		  or diag($r->{err});
	}
	my $r = q_timed('SELECT perfguard.reset()');
	ok(!$r->{timed_out} && $r->{rc} == 0, 'reset() completes (no lock held)')
	  or diag($r->{err});

	# 20 requests spread over two backends, 3 lookups on each: 20 requests of
	# 7 queries, 20 N+1s of 6
	my $a = $node->background_psql('postgres', on_error_stop => 0);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	for my $n (1 .. 20)
	{
		my $trace = sprintf('5bf92f3577b34da6a3ce929d0e%06d', $n);
		$a->query_safe(list_sql('kill-after', $trace));
		for my $i (1 .. 6)
		{
			($i % 2 ? $a : $b)->query_safe(lookup_sql('kill-after', $trace, $n + $i));
		}
	}
	$a->quit;
	$b->quit;
	settle();
	is(requests_of('kill-after'), '20 140 7',
		'after the kills: 20 requests over two backends, 7 queries each');
	is(n_plus_one_of('kill-after'), '1 20 120 6', 'and 20 N+1s of 6');
	ok(!$node->log_contains(qr/PANIC|stuck spinlock|terminated by signal/, $offset),
		'no PANIC, stuck spinlock or crash in the server log');
}

# ---- 4. SIGKILL of a backend in the middle of a request
{
	my $route = 'kill-9';
	my $trace = '4bf92f3577b34da6a3ce929d0e0e4704';
	my $a = $node->background_psql('postgres', on_error_stop => 0);
	my $b = $node->background_psql('postgres', on_error_stop => 0);
	my $apid = $a->query_safe('SELECT pg_backend_pid()');
	$a->query_safe(list_sql($route, $trace));
	for my $i (41 .. 44)
	{
		($i % 2 ? $a : $b)->query_safe(lookup_sql($route, $trace, $i));
	}
	$offset = -s $node->logfile;
	ok(kill('KILL', $apid), 'backend killed with SIGKILL mid-request');
	eval { $a->quit; };
	eval { $b->quit; };
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		'server accepts connections again');
	ok( $node->log_contains(
			qr/all server processes terminated; reinitializing/, $offset),
		'the postmaster reinitialised shared memory');

	# the request table starts empty and works: one request over two backends
	$a = $node->background_psql('postgres', on_error_stop => 0);
	$b = $node->background_psql('postgres', on_error_stop => 0);
	my $trace2 = '4bf92f3577b34da6a3ce929d0e0e4705';
	$a->query_safe(list_sql('kill-9-after', $trace2));
	for my $i (51 .. 58)
	{
		($i % 2 ? $a : $b)->query_safe(lookup_sql('kill-9-after', $trace2, $i));
	}
	$a->quit;
	$b->quit;
	settle();
	is(requests_of('kill-9-after'), '1 9 9',
		'after the restart: one request over two backends with its 9 queries');
	is(n_plus_one_of('kill-9-after'), '1 1 8 8', 'its N+1 with all 8 repeats');
	is(requests_of($route), '0 0 0',
		'the killed request died with shared memory (nothing half-counted)');
	foreach my $view (qw(requests n_plus_one info))
	{
		my $r = q_timed("SELECT count(*) >= 0 FROM perfguard.$view");
		ok(!$r->{timed_out} && $r->{rc} == 0 && $r->{out} eq 't',
			"perfguard.$view readable after the restart")
		  or diag($r->{err});
	}
}

$node->stop;
done_testing();
