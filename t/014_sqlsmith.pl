
# Copyright (c) 2026, perfguard developers
#
# The short form of the sqlsmith fuzz run (t/fuzz/run_sqlsmith.sh): random
# queries from sqlsmith against a cluster with perfguard preloaded and every
# detector on must never crash or restart the server, never raise an
# internal error from perfguard, and leave every view readable.  Skipped
# only when sqlsmith is not installed.  The long run is documented in
# docs/guarantees.md.

use strict;
use warnings;

use PostgreSQL::Test::Utils;
use Test::More;
use File::Basename qw(dirname);
use Cwd qw(abs_path);

my $script = abs_path(dirname(__FILE__)) . '/fuzz/run_sqlsmith.sh';
my $n = $ENV{PERFGUARD_SQLSMITH_QUERIES} // 1000;

if (system('sh', '-c', 'command -v sqlsmith >/dev/null 2>&1') != 0)
{
	plan skip_all =>
	  'sqlsmith is not installed (apt-get install sqlsmith); fuzzing skipped';
}

my ($stdout, $stderr);
my $ok = IPC::Run::run([ 'bash', $script, $n, '4242' ],
	'>', \$stdout, '2>', \$stderr);
my $rc = $? >> 8;
note($stdout);
note($stderr) if $stderr ne '';
is($rc, 0, "sqlsmith, $n random queries: server alive, never restarted, views readable");
like($stdout, qr/run_sqlsmith: OK/, 'the fuzz run reports OK');
unlike($stdout, qr/FAIL/, 'no failure reported');

done_testing();
