
# Copyright (c) 2026, perfguard developers
#
# Suppression rules, errors, percentiles, windows and sequences must survive a clean restart like the statistics:
# - suppression rules (perfguard.ignore / ignore_route), which reset() keeps;
# - the findings recorded as suppressed, the errors per SQLSTATE, the latency
#   histogram (p50/p95/p99) and the time windows of statements_history;
# - the repeating-sequence finding.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'perfguard'\n");
$node->start;

$node->safe_psql('postgres', 'CREATE EXTENSION perfguard');
$node->safe_psql('postgres', q{
	CREATE TABLE a (id int PRIMARY KEY, name text);
	CREATE TABLE p (id int PRIMARY KEY, name text);
	CREATE TABLE b (id int PRIMARY KEY, a_id int REFERENCES a(id), p_id int REFERENCES p(id));
	INSERT INTO a SELECT g, 'a' || g FROM generate_series(1, 10) g;
	INSERT INTO p SELECT g, 'p' || g FROM generate_series(1, 10) g;
	INSERT INTO b SELECT g, g, g FROM generate_series(1, 10) g;});
$node->safe_psql('postgres', 'SELECT perfguard.reset()');

# a sequence (author, publisher per book) in one request, then an N+1 that a
# route rule suppresses, and a failing statement
my $loop = "SELECT perfguard.begin_request('/books/');\nSELECT id FROM b;\n";
$loop .= "SELECT name FROM a WHERE id = $_;\nSELECT name FROM p WHERE id = $_;\n" for 1 .. 5;
$loop .= "SELECT * FROM perfguard.end_request();\n";
$node->safe_psql('postgres', $loop);
$node->safe_psql('postgres', q{SELECT perfguard.ignore_route('/admin/', 'internal')});
my $admin = "SELECT perfguard.begin_request('/admin/');\nSELECT id FROM b;\n";
$admin .= "SELECT name FROM a WHERE id = $_;\n" for 1 .. 5;
$admin .= "SELECT * FROM perfguard.end_request();\n";
$node->safe_psql('postgres', $admin);
$node->psql('postgres', 'SELECT 1 / (id - id) FROM a WHERE id = 1');

my $q_rules = q{SELECT kind, route, reason FROM perfguard.ignore_rules};
my $q_ignored = q{SELECT category, route, suppressed_by, total_repeats FROM perfguard.ignored};
my $q_seq = q{SELECT route, cardinality(sequence), total_iterations FROM perfguard.n_plus_one_sequences};
my $q_err = q{SELECT sqlstate, count, query FROM perfguard.errors};
my $q_pct = q{SELECT calls, p50_ms > 0 AND p50_ms <= p99_ms FROM perfguard.statements
	WHERE query = 'SELECT name FROM a WHERE id = $1'};
my $q_hist = q{SELECT sum(h.calls) FROM perfguard.statements_history h
	JOIN perfguard.statements s USING (userid, dbid, queryid, toplevel)
	WHERE s.query = 'SELECT name FROM a WHERE id = $1'};

my %before;
$before{$_} = $node->safe_psql('postgres', $_)
  for ($q_rules, $q_ignored, $q_seq, $q_err, $q_pct, $q_hist);

is($before{$q_rules}, 'route|/admin/|internal', 'the route rule is listed');
is($before{$q_ignored}, 'n_plus_one|/admin/|rule:route|5', 'the /admin/ N+1 is suppressed, still counted');
is($before{$q_seq}, '/books/|2|5', 'the sequence is one finding with 2 children and 5 iterations');
like($before{$q_err}, qr/^22012\|1\|SELECT \$1 \/ \(id - id\) FROM a WHERE id = \$2$/,
	'the failed statement is counted with its text');
is($before{$q_pct}, '10|t', 'percentiles come from the histogram');
is($before{$q_hist}, '10', 'the time windows hold the calls');

$node->restart;

is($node->safe_psql('postgres', $_), $before{$_}, "unchanged after a clean restart: $_")
  for ($q_rules, $q_ignored, $q_seq, $q_err, $q_pct, $q_hist);

# reset() clears the statistics but keeps the rules
$node->safe_psql('postgres', 'SELECT perfguard.reset()');
is($node->safe_psql('postgres', $q_rules), 'route|/admin/|internal', 'reset() keeps the rules');
is($node->safe_psql('postgres', 'SELECT count(*) FROM perfguard.errors'), '0', 'reset() clears the errors');

# and the rule still applies after the restart
$node->safe_psql('postgres', $admin);
is($node->safe_psql('postgres', 'SELECT count(*) FROM perfguard.n_plus_one'), '0',
	'the restored rule still suppresses');
is($node->safe_psql('postgres', 'SELECT perfguard.unignore_route(\'/admin/\')'), 't', 'unignore_route');
is($node->safe_psql('postgres', 'SELECT count(*) FROM perfguard.n_plus_one'), '1',
	'without the rule the finding is reported');

$node->stop;
done_testing();
