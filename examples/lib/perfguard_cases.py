"""
perfguard_cases: the checking half of the ported N+1 test suites
(examples/zeal, examples/nplusone).

A ported test case runs its ORM code as one request of its own under a
unique label (the sqlcommenter route when tagged, the connection's
application_name when not), on a backend of its own; at the end of a run
every label's findings are read back at once and compared with what the
case expects:

    Expect(n_plus_one={'social_user': NP(repeats=2, distinct=2,
                                          fix=r"select_related\\('author'\\)")},
           dups={'social_user': 2})

- n_plus_one: the N+1s that must be reported, by the relation that is
  looked up once per row (perfguard.n_plus_one.table_name): exactly these,
  with total_repeats = repeats and max_distinct_params = distinct (the
  statements the case sent), once (occurrences = 1), with a parent query,
  and with a suggestion that matches fix (a regular expression naming the
  relation), when given.  Each must also be in perfguard.findings (as an
  n_plus_one, or inside an n_plus_one_sequence).
- allow: N+1s that may be reported (a second loop that the original tool
  does not assert); when reported, their counts must be right too.
- dups: perfguard.duplicates of the request, by the table after FROM in the
  statement: {table: max_duplicates}; exactly these (default: none).
- sequence_ok: whether an n_plus_one_sequence may be reported.
- ignored: the N+1 must not be reported, but must be listed in
  perfguard.ignored (the case's route was suppressed with ignore_route).
A negative case is Expect() with at most dups: nothing else may be
reported, neither n_plus_one, nor n_plus_one_sequences, nor write_loops.

Prints "ok - LABEL" or "not ok - LABEL" with the reasons, then a summary
per kind of case, and "N passed, M failed" as its last line.
"""
import hashlib
import os
import re
import sys
import time

import psycopg2

TRACE_FLAGS = '01'
_FROM = re.compile(r'\bFROM\s+"?([A-Za-z_][A-Za-z0-9_]*)"?', re.I)


def from_table(sql):
    m = _FROM.search(sql or '')
    return m.group(1) if m else None


class NP:
    """One expected N+1: the repeated lookup's counts and the fix it needs."""

    def __init__(self, repeats, distinct, fix=None):
        self.repeats = repeats
        self.distinct = distinct
        self.fix = fix

    def __repr__(self):
        return 'N+1(%d repeats, %d distinct%s)' % (
            self.repeats, self.distinct, ', fix ~ %s' % self.fix if self.fix else '')


class Expect:
    def __init__(self, n_plus_one=None, allow=None, dups=None, sequence_ok=False,
                 ignored=False):
        self.n_plus_one = n_plus_one or {}
        self.allow = allow or {}
        self.dups = dups or {}
        self.sequence_ok = sequence_ok
        self.ignored = ignored

    @property
    def positive(self):
        return bool(self.n_plus_one)


class TraceIds:
    """Deterministic W3C trace context: one trace id per request, one span id per statement."""

    def __init__(self, label):
        self.trace = hashlib.md5(label.encode()).hexdigest()
        self.span = 0

    def request(self, n):
        self.trace = hashlib.md5(('%s#%d' % (self.trace, n)).encode()).hexdigest()
        self.span = 0

    def traceparent(self):
        self.span += 1
        return '00-%s-%016x-%s' % (self.trace, self.span, TRACE_FLAGS)


def connect_observer(application_name='perfguard-observer'):
    conn = psycopg2.connect(dbname=os.environ.get('PGDATABASE'),
                            application_name=application_name)
    conn.autocommit = True
    return conn


class Checker:
    def __init__(self, suite):
        self.suite = suite
        self.obs = connect_observer('%s-observer' % suite)
        self.passed = 0
        self.failed = 0
        self.pending = []
        self.by_kind = {}
        self.failures = []

    def query(self, sql, args=()):
        with self.obs.cursor() as cur:
            cur.execute(sql, args)
            if cur.description is None:
                return []
            names = [c[0] for c in cur.description]
            return [dict(zip(names, r)) for r in cur.fetchall()]

    def ignore_route(self, label, reason):
        self.query('SELECT perfguard.ignore_route(%s, %s)', [label, reason])

    def expect(self, label, expect, kind, error=None):
        """Remember what the request labelled label must report (checked in verify())."""
        self.pending.append((label, expect, kind, error))

    def wait_for_backends(self, prefix, timeout=20.0):
        """Wait until every backend of this run has exited: its request is then flushed."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            n = self.query("SELECT count(*) AS n FROM pg_stat_activity "
                           "WHERE application_name LIKE %s AND pid <> pg_backend_pid()",
                           [prefix + '%'])[0]['n']
            if n == 0:
                break
            time.sleep(0.05)
        # longer than perfguard.request_gap: requests that end by the idle gap have ended
        gap = self.query("SELECT current_setting('perfguard.request_gap') AS g")[0]['g']
        m = re.match(r'(\d+)\s*(ms|s)?$', gap)
        ms = int(m.group(1)) * (1000 if m and m.group(2) == 's' else 1) if m else 200
        time.sleep(ms / 1000.0 + 0.1)

    def _read(self, prefix):
        like = prefix + '%'
        views = {}
        views['n_plus_one'] = self.query(
            'SELECT route, queryid, query, table_name, column_name, total_repeats, '
            'max_distinct_params, occurrences, parent_query, suggestion, sequence '
            'FROM perfguard.n_plus_one WHERE route LIKE %s', [like])
        views['sequences'] = self.query(
            'SELECT route, sequence, queries, max_iterations '
            'FROM perfguard.n_plus_one_sequences WHERE route LIKE %s', [like])
        views['duplicates'] = self.query(
            'SELECT route, query, total_duplicates, max_duplicates '
            'FROM perfguard.duplicates WHERE route LIKE %s', [like])
        views['write_loops'] = self.query(
            'SELECT route, query, max_repeats FROM perfguard.write_loops WHERE route LIKE %s',
            [like])
        views['findings'] = self.query(
            'SELECT category, route, queryid FROM perfguard.findings WHERE route LIKE %s',
            [like])
        views['ignored'] = self.query(
            'SELECT category, route, queryid, query, total_repeats FROM perfguard.ignored '
            'WHERE route LIKE %s', [like])
        out = {}
        for name, rows in views.items():
            for r in rows:
                out.setdefault(r['route'], {}).setdefault(name, []).append(r)
        return out

    def verify(self, prefix):
        """Read the views once and check every pending case whose label starts with prefix."""
        self.wait_for_backends(prefix)
        seen = self._read(prefix)
        todo = [p for p in self.pending if p[0].startswith(prefix)]
        self.pending = [p for p in self.pending if not p[0].startswith(prefix)]
        for label, expect, kind, error in todo:
            problems = []
            if error:
                problems.append('the case itself failed: %s' % error)
            problems += self._compare(expect, seen.get(label, {}))
            self._record(label, kind, expect.positive, problems)

    def _compare(self, ex, got):
        problems = []
        nps = got.get('n_plus_one', [])
        by_table = {}
        for r in nps:
            by_table.setdefault(r['table_name'], []).append(r)
        if ex.ignored:
            if nps:
                problems.append('suppressed route, yet n_plus_one reports %s' % _fmt_np(nps))
            ign = [r for r in got.get('ignored', []) if r['category'] == 'n_plus_one']
            tables = {r2 for r in ign for r2 in [_table_of(r)]}
            missing = [t for t in ex.n_plus_one if t not in tables]
            if missing:
                problems.append('expected the N+1 on %s in perfguard.ignored, found %s'
                                % (', '.join(missing),
                                   ', '.join(sorted(map(str, tables))) or 'nothing'))
        else:
            for table, np in ex.n_plus_one.items():
                rows = by_table.get(table)
                if not rows:
                    problems.append('expected an N+1 on %s (%d lookups, %d distinct), '
                                    'perfguard reported %s'
                                    % (table, np.repeats, np.distinct,
                                       _fmt_np(nps) if nps else 'no N+1'))
                    continue
                problems += _check_np(table, rows, np, got)
            for table, rows in by_table.items():
                if table in ex.n_plus_one:
                    continue
                if table in ex.allow:
                    problems += _check_np(table, rows, ex.allow[table], got, require_fix=False)
                    continue
                problems.append('unexpected N+1: %s' % _fmt_np(rows))
        seqs = got.get('sequences', [])
        if seqs and not ex.sequence_ok:
            problems.append('unexpected repeating sequence: %s'
                            % '; '.join('%s x%s' % (' | '.join(_short(q) for q in (s['queries'] or [])),
                                                     s['max_iterations']) for s in seqs))
        dups = {}
        for r in got.get('duplicates', []):
            t = from_table(r['query'])
            dups[t] = max(dups.get(t, 0), r['max_duplicates'])
        if dups != ex.dups:
            problems.append('duplicates: expected %s, perfguard reported %s'
                            % (ex.dups or 'none', dups or 'none'))
        loops = got.get('write_loops', [])
        if loops:
            problems.append('unexpected write loop: %s'
                            % '; '.join('%s x%s' % (_short(r['query']), r['max_repeats']) for r in loops))
        return problems

    def _record(self, label, kind, positive, problems):
        stats = self.by_kind.setdefault(kind, [0, 0])
        if problems:
            self.failed += 1
            stats[1] += 1
            self.failures.append(label)
            print('not ok - %s' % label)
            for p in problems:
                print('    # %s' % p)
        else:
            self.passed += 1
            stats[0] += 1
            print('ok - %s' % label)
        sys.stdout.flush()

    def finish(self):
        for kind in sorted(self.by_kind):
            ok, bad = self.by_kind[kind]
            print('# %s: %d passed, %d failed' % (kind, ok, bad))
        print('%d passed, %d failed' % (self.passed, self.failed))
        return 0 if self.failed == 0 and self.passed > 0 else 1


def _table_of(row):
    return from_table(row.get('query'))


def _short(sql, n=90):
    sql = ' '.join((sql or '').split())
    return sql if len(sql) <= n else sql[:n - 3] + '...'


def _fmt_np(rows):
    return '; '.join('%s.%s x%s (%s distinct) after %s' % (
        r['table_name'], r['column_name'], r['total_repeats'], r['max_distinct_params'],
        _short(r['parent_query'], 50) if r['parent_query'] else 'no parent') for r in rows)


def _check_np(table, rows, np, got, require_fix=True):
    problems = []
    if len(rows) > 1:
        problems.append('%s: %d N+1 rows, expected one: %s' % (table, len(rows), _fmt_np(rows)))
    r = rows[0]
    if r['total_repeats'] != np.repeats or r['max_distinct_params'] != np.distinct:
        problems.append('%s: reported %s repeats, %s distinct; the case sent %d, %d distinct'
                        % (table, r['total_repeats'], r['max_distinct_params'],
                           np.repeats, np.distinct))
    if r['occurrences'] != 1:
        problems.append('%s: occurrences %s, expected 1 (one request)' % (table, r['occurrences']))
    if r['parent_query'] is None:
        problems.append('%s: no parent query (parent_query is NULL)' % table)
    if require_fix and np.fix and not re.search(np.fix, r['suggestion'] or ''):
        problems.append('%s: the fix does not name the relation (/%s/): %s'
                        % (table, np.fix, r['suggestion']))
    in_findings = any(f['category'] == 'n_plus_one' and f['queryid'] == r['queryid']
                      for f in got.get('findings', []))
    in_seq = r['sequence'] is not None and any(
        f['category'] == 'n_plus_one_sequence' for f in got.get('findings', []))
    if not (in_findings or in_seq):
        problems.append('%s: not listed in perfguard.findings' % table)
    return problems
