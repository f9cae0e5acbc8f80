#!/usr/bin/python3
"""
End-to-end checks: Django's test Client against the seeded database, with
perfguard loaded in the server (run_e2e.sh sets all of this up).

For every pattern it resets perfguard, requests the BAD view and then the
GOOD one, and reads perfguard's views from a second connection:

  - the BAD route has the expected row (n_plus_one with the right fix,
    duplicates, write_loops) with the exact repeat counts;
  - the GOOD route has no row in n_plus_one, duplicates or write_loops;
  - perfguard.requests counts one request per route, and flags only the BAD one.

A list view over three relations (posts with author, tags, comments) is one
finding whose fix names all three in Django's words; after the fresh
migrate, no index is advised to be dropped (issue 17).

Then the guards: with perfguard.on_n_plus_one / on_duplicate = 'error' the
BAD view fails with a database error that names the repeated query, and the
GOOD view passes; the same through the assertNoNPlusOne() test mixin, also
inside a transaction as in Django's TestCase.

Everything runs once per scope mode of blog.middleware (explicit
begin_request/end_request, then sqlcommenter tags only).  Prints one line
per check, `ok` or `FAIL`, and ends with `N passed, M failed`; exit 1 on
any failure.
"""
import os
import sys
import logging
import re
import traceback
import unittest

os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'project.settings')

import django  # noqa: E402

django.setup()
# the guard checks make views fail on purpose: keep their 500s out of the output
logging.getLogger('django.request').setLevel(logging.CRITICAL)

import psycopg2  # noqa: E402
from django.db import DatabaseError, connection, transaction  # noqa: E402
from django.test import Client  # noqa: E402
from django.test.utils import CaptureQueriesContext, override_settings  # noqa: E402
from django.urls import resolve  # noqa: E402

from blog.models import Essay  # noqa: E402
from blog.perfguard_testing import PerfguardAssertionsMixin, perfguard_guard  # noqa: E402

ESSAYS = 24           # seed: essays
AUTHORS = 8           # seed: distinct authors of those essays
WRITE_BATCH = 10      # views.WRITE_BATCH
SCOPE_VIEWS = ('n_plus_one', 'duplicates', 'write_loops')


class Results:
    def __init__(self):
        self.passed = 0
        self.failed = 0
        self.skipped = 0

    def check(self, name, condition, detail=None):
        if condition:
            self.passed += 1
            print('ok   %s' % name)
        else:
            self.failed += 1
            print('FAIL %s' % name)
            if detail:
                for line in str(detail).rstrip().splitlines():
                    print('     | %s' % line)
        return condition

    def skip(self, name, why):
        self.skipped += 1
        print('skip %s (%s)' % (name, why))


R = Results()


class Observer:
    """A second connection that reads perfguard's views (one transaction per read)."""

    def __init__(self):
        params = connection.get_connection_params()
        self.conn = psycopg2.connect(**params)
        self.conn.set_session(autocommit=False)

    def query(self, sql, args=()):
        with self.conn.cursor() as cur:
            cur.execute(sql, args)
            names = [col[0] for col in cur.description]
            rows = [dict(zip(names, row)) for row in cur.fetchall()]
        self.conn.commit()
        return rows

    def reset(self):
        self.query('SELECT perfguard.reset()')

    def rows(self, view, route):
        return self.query('SELECT * FROM perfguard.%s WHERE route = %%s' % view, [route])

    def relation_exists(self, name):
        return self.query('SELECT to_regclass(%s) IS NOT NULL AS ok', [name])[0]['ok']


def route_of(path):
    return resolve(path.split('?')[0]).route


_COMMENT = re.compile(r"\s*/\*[^*]*\*/\s*$")
_LITERAL = re.compile(r"'(?:[^']|'')*'|\b\d+\b")


def sql_summary(captured):
    """What Django sent, grouped by statement shape (literals as ?), most repeated first."""
    shapes = {}
    for q in captured:
        sql = q['sql']
        shape = _LITERAL.sub('?', _COMMENT.sub('', sql))
        entry = shapes.setdefault(shape, {'n': 0, 'texts': set(), 'example': sql})
        entry['n'] += 1
        entry['texts'].add(sql)
    lines = ['Django sent %d statements:' % len(captured)]
    for shape, e in sorted(shapes.items(), key=lambda kv: -kv[1]['n'])[:5]:
        lines.append('  %3dx (%d distinct) %s' % (e['n'], len(e['texts']), shape[:260]))
    top = max(shapes.values(), key=lambda e: e['n'], default=None)
    if top:
        lines.append('  e.g. %s' % top['example'][:400])
    return '\n'.join(lines)


def app_queries(captured):
    """Statements of the view itself (without the middleware's begin/end_request)."""
    return [q for q in captured if 'perfguard.' not in q['sql']]


def fmt_rows(rows):
    if not rows:
        return 'perfguard reported no row'
    out = ['perfguard reported:']
    for row in rows:
        out.append('  ' + ', '.join('%s=%r' % (k, v) for k, v in row.items()
                                    if k not in ('dbid', 'userid', 'last_seen')))
    return '\n'.join(out)


class Runner:
    def __init__(self, mode, observer):
        self.mode = mode
        self.obs = observer
        self.client = Client()

    def get(self, path):
        with CaptureQueriesContext(connection) as captured:
            response = self.client.get(path)
        return response, list(captured.captured_queries)

    def header(self, response, name):
        value = response.get('X-Perfguard-%s' % name)
        return int(value) if value is not None else None

    def tag(self, text):
        return '[%s] %s' % (self.mode, text)

    # -- one pattern ------------------------------------------------------

    def pattern(self, name, bad_path, good_path, expect_bad, bad_queries, good_queries, flags):
        """Reset, request bad and good, close the scope, check both routes.

        flags: (n_plus_one_requests, duplicate_requests) expected for the bad route.
        """
        self.obs.reset()
        bad, bad_sql = self.get(bad_path)
        good, good_sql = self.get(good_path)
        self.get('/ping/')   # a new route: ends the good view's scope in every mode
        bad_route, good_route = route_of(bad_path), route_of(good_path)
        why = sql_summary(bad_sql)

        R.check(self.tag('%s: bad view answers 200' % name), bad.status_code == 200)
        R.check(self.tag('%s: good view answers 200' % name), good.status_code == 200)
        R.check(self.tag('%s: bad view sends %d queries' % (name, bad_queries)),
                len(app_queries(bad_sql)) == bad_queries, why)
        R.check(self.tag('%s: good view sends %d queries' % (name, good_queries)),
                len(app_queries(good_sql)) == good_queries, sql_summary(good_sql))

        found = {view: self.obs.rows(view, bad_route) for view in SCOPE_VIEWS}
        expect_bad(found, why)

        for view in SCOPE_VIEWS:
            rows = self.obs.rows(view, good_route)
            R.check(self.tag('%s: good route %s has no %s row' % (name, good_route, view)),
                    not rows, fmt_rows(rows) + '\n' + sql_summary(good_sql))

        req_bad = self.obs.rows('requests', bad_route)
        req_good = self.obs.rows('requests', good_route)
        R.check(self.tag('%s: requests counts 1 request for %s' % (name, bad_route)),
                len(req_bad) == 1 and req_bad[0]['requests'] == 1, fmt_rows(req_bad))
        R.check(self.tag('%s: requests counts 1 request for %s' % (name, good_route)),
                len(req_good) == 1 and req_good[0]['requests'] == 1, fmt_rows(req_good))
        if req_good:
            R.check(self.tag('%s: requests flags no problem for %s' % (name, good_route)),
                    req_good[0]['n_plus_one_requests'] == 0 and req_good[0]['duplicate_requests'] == 0,
                    fmt_rows(req_good))
        if req_bad:
            R.check(self.tag('%s: requests flags %s (n_plus_one_requests=%d, duplicate_requests=%d)'
                             % ((name, bad_route) + flags)),
                    (req_bad[0]['n_plus_one_requests'], req_bad[0]['duplicate_requests']) == flags,
                    fmt_rows(req_bad))

        findings = self.obs.rows('findings', bad_route)
        R.check(self.tag('%s: findings lists %s' % (name, bad_route)), bool(findings), fmt_rows(findings))

        if self.mode == 'explicit':
            n1 = self.header(bad, 'N-Plus-One')
            R.check(self.tag('%s: end_request() summary of the bad view counts >= %d queries'
                             % (name, bad_queries)),
                    (self.header(bad, 'Queries') or 0) >= bad_queries,
                    'X-Perfguard-Queries=%r' % bad.get('X-Perfguard-Queries'))
            if flags[0]:
                R.check(self.tag('%s: end_request() summary of the bad view reports an N+1' % name),
                        n1 is not None and n1 >= 1, 'X-Perfguard-N-Plus-One=%r' % n1)
            if flags[1]:
                dup = self.header(bad, 'Duplicates')
                R.check(self.tag('%s: end_request() summary of the bad view reports duplicates' % name),
                        dup is not None and dup >= 1, 'X-Perfguard-Duplicates=%r' % dup)
            R.check(self.tag('%s: end_request() summary of the good view reports none' % name),
                    self.header(good, 'N-Plus-One') == 0 and self.header(good, 'Duplicates') == 0,
                    'X-Perfguard-N-Plus-One=%r X-Perfguard-Duplicates=%r'
                    % (good.get('X-Perfguard-N-Plus-One'), good.get('X-Perfguard-Duplicates')))

    # -- expectations -------------------------------------------------------

    def expect_n_plus_one(self, name, table, fix, distinct, also_duplicates=False):
        def check(found, why):
            rows = [r for r in found['n_plus_one'] if table in (r['query'] or '')]
            detail = fmt_rows(found['n_plus_one']) + '\n' + why
            if not R.check(self.tag('%s: n_plus_one row for the repeated query on %s' % (name, table)),
                           len(rows) == 1, detail):
                return
            row = rows[0]
            R.check(self.tag('%s: suggestion mentions %s' % (name, ' and '.join(fix))),
                    all(any(alt in (row['suggestion'] or '') for alt in alts) for alts in fix.values()),
                    detail)
            R.check(self.tag('%s: parent query is the essay list' % name),
                    'blog_essay' in (row['parent_query'] or '') and row['parent_queryid'] is not None,
                    detail)
            R.check(self.tag('%s: occurrences 1, max_repeats %d, max_distinct_params %d'
                             % (name, ESSAYS, distinct)),
                    row['occurrences'] == 1 and row['max_repeats'] == ESSAYS
                    and row['total_repeats'] == ESSAYS and row['max_distinct_params'] == distinct,
                    detail)
            dup = [r for r in found['duplicates'] if table in (r['query'] or '')]
            if also_duplicates:
                R.check(self.tag('%s: the repeated lookups are also duplicates' % name),
                        len(dup) == 1, fmt_rows(found['duplicates']))
            else:
                R.check(self.tag('%s: no duplicates (every parameter set differs)' % name),
                        not found['duplicates'], fmt_rows(found['duplicates']))
            R.check(self.tag('%s: no write_loops row' % name), not found['write_loops'],
                    fmt_rows(found['write_loops']))
        return check

    def expect_duplicates(self, name):
        def check(found, why):
            rows = [r for r in found['duplicates'] if 'blog_author' in (r['query'] or '')]
            detail = fmt_rows(found['duplicates']) + '\n' + why
            if R.check(self.tag('%s: duplicates row for the author lookup' % name), len(rows) == 1, detail):
                row = rows[0]
                R.check(self.tag('%s: occurrences 1, max_duplicates 2 or 3' % name),
                        row['occurrences'] == 1 and row['max_duplicates'] in (2, 3), detail)
                R.check(self.tag('%s: suggestion present' % name), bool(row['suggestion']), detail)
            R.check(self.tag('%s: three lookups are no N+1' % name), not found['n_plus_one'],
                    fmt_rows(found['n_plus_one']))
        return check

    def expect_write_loop(self, name):
        def check(found, why):
            rows = [r for r in found['write_loops'] if 'blog_essay' in (r['query'] or '')]
            detail = fmt_rows(found['write_loops']) + '\n' + why
            if R.check(self.tag('%s: write_loops row for the INSERT' % name), len(rows) == 1, detail):
                row = rows[0]
                R.check(self.tag('%s: command INSERT, max_repeats %d' % (name, WRITE_BATCH)),
                        row['command'] == 'INSERT' and row['max_repeats'] == WRITE_BATCH
                        and row['occurrences'] == 1, detail)
                R.check(self.tag('%s: suggestion mentions bulk_create' % name),
                        'bulk_create' in (row['suggestion'] or ''), detail)
            R.check(self.tag('%s: no n_plus_one row' % name), not found['n_plus_one'],
                    fmt_rows(found['n_plus_one']))
        return check

    # -- the optional plan patterns -------------------------------------------

    def plan_patterns(self):
        if not self.obs.relation_exists('perfguard.offset_pagination'):
            R.skip(self.tag('deep offset'), 'perfguard.offset_pagination does not exist in this build')
        else:
            self.obs.reset()
            bad, bad_sql = self.get('/bad/offset/')
            self.get('/good/offset/?after=1225')
            rows = [r for r in self.obs.query('SELECT * FROM perfguard.offset_pagination')
                    if 'blog_scene' in (r['query'] or '')]
            detail = fmt_rows(rows) + '\n' + sql_summary(bad_sql)
            R.check(self.tag('deep offset: one offset_pagination row for page 50 (OFFSET 1225)'),
                    len(rows) == 1 and rows[0]['max_offset'] == 1225, detail)
            R.check(self.tag('deep offset: suggestion gives a keyset predicate on id'),
                    len(rows) == 1 and 'id' in (rows[0]['suggestion'] or ''), detail)
        if not self.obs.relation_exists('perfguard.plan_findings'):
            R.skip(self.tag('unbounded result'), 'perfguard.plan_findings does not exist in this build')
        else:
            self.obs.reset()
            bad, bad_sql = self.get('/bad/unbounded/')
            self.get('/good/unbounded/')
            rows = [r for r in self.obs.query(
                "SELECT * FROM perfguard.plan_findings WHERE finding = 'unbounded_result'")
                if 'blog_scene' in (r['query'] or '')]
            detail = fmt_rows(rows) + '\n' + sql_summary(bad_sql)
            R.check(self.tag('unbounded result: one unbounded_result finding, for the query without LIMIT'),
                    len(rows) == 1 and 'LIMIT' not in rows[0]['query'].upper(), detail)

    # -- guards -----------------------------------------------------------------

    def guards(self):
        class Case(PerfguardAssertionsMixin, unittest.TestCase):
            def runTest(self):
                pass
        case = Case()

        # NB: consecutive requests below always change route, so that in
        # comment mode each one is its own scope.
        def guarded_error(path, **guards):
            captured = []
            try:
                with perfguard_guard(**guards):
                    with CaptureQueriesContext(connection) as cap:
                        try:
                            self.client.get(path)
                        finally:
                            captured[:] = cap.captured_queries
            except DatabaseError as exc:
                return exc, captured
            return None, captured

        def setting(name):
            with connection.cursor() as cur:
                cur.execute('SHOW perfguard.%s' % name)
                return cur.fetchone()[0]

        # on_n_plus_one = error, forward FK
        exc, sql = guarded_error('/bad/forward-fk/', on_n_plus_one='error')
        R.check(self.tag('guard on_n_plus_one=error: bad/forward-fk/ raises a django.db error'),
                exc is not None, sql_summary(sql))
        if exc is not None:
            R.check(self.tag('guard: the error names the repeated query (blog_author)'),
                    'blog_author' in str(exc), 'error was: %s' % exc)
        R.check(self.tag('guard: perfguard.on_n_plus_one is back to off after the block'),
                setting('on_n_plus_one') == 'off', setting('on_n_plus_one'))
        exc, sql = guarded_error('/good/forward-fk/', on_n_plus_one='error')
        R.check(self.tag('guard on_n_plus_one=error: good/forward-fk/ passes'), exc is None, exc)

        # on_duplicate = error
        exc, sql = guarded_error('/bad/duplicates/1/', on_duplicate='error')
        R.check(self.tag('guard on_duplicate=error: bad/duplicates/1/ raises a django.db error'),
                exc is not None, sql_summary(sql))
        if exc is not None:
            R.check(self.tag('guard: the error names the duplicated query (blog_author)'),
                    'blog_author' in str(exc), 'error was: %s' % exc)
        exc, sql = guarded_error('/good/duplicates/1/', on_duplicate='error')
        R.check(self.tag('guard on_duplicate=error: good/duplicates/1/ passes'), exc is None, exc)

        # the mixin, in autocommit and inside a transaction (as in TestCase)
        for in_txn in (False, True):
            where = 'inside a transaction' if in_txn else 'autocommit'
            for path, should_fail in (('/bad/reverse-fk/', True), ('/good/reverse-fk/', False),
                                      ('/bad/m2m/', True), ('/good/m2m/', False)):
                error = None
                try:
                    with (transaction.atomic() if in_txn else _nullcontext()):
                        try:
                            with case.assertNoNPlusOne():
                                self.client.get(path)
                        except AssertionError as exc:
                            error = exc
                        # the test's transaction is still usable after the guard fired
                        Essay.objects.count()
                except Exception as exc:  # anything else is a failure of the helper
                    error = exc
                    traceback.print_exc()
                if should_fail:
                    table = 'blog_scene' if 'reverse' in path else 'blog_tag'
                    R.check(self.tag('assertNoNPlusOne (%s): %s fails the test, naming %s'
                                     % (where, path, table)),
                            isinstance(error, AssertionError) and table in str(error),
                            'got: %r' % (error,))
                else:
                    R.check(self.tag('assertNoNPlusOne (%s): %s passes' % (where, path)),
                            error is None, 'got: %r' % (error,))
            R.check(self.tag('assertNoNPlusOne (%s): setting restored' % where),
                    setting('on_n_plus_one') == 'off', setting('on_n_plus_one'))

    # -- findings (issue 17) ------------------------------------------------

    def three_relations(self):
        """A list view over three relations: one card, one fix naming all three."""
        self.obs.reset()
        bad, bad_sql = self.get('/bad/post-list/')
        good, good_sql = self.get('/good/post-list/')
        self.get('/ping/')
        R.check(self.tag('post list: both views answer 200'),
                bad.status_code == 200 and good.status_code == 200)
        R.check(self.tag('post list: the good view sends 3 queries'),
                len(app_queries(good_sql)) == 3, sql_summary(good_sql))
        bad_route, good_route = route_of('/bad/post-list/'), route_of('/good/post-list/')
        cards = self.obs.query('SELECT * FROM perfguard.findings WHERE route = %s', [bad_route])
        if not R.check(self.tag('post list: findings has one card for %s' % bad_route),
                       len(cards) == 1, fmt_rows(cards) + '\n' + sql_summary(bad_sql)):
            return
        card = cards[0]
        fix = card['suggestion'] or ''
        want = ".select_related('author').prefetch_related('tags', 'comment_set')"
        R.check(self.tag('post list: the fix is Django: %s' % want), ('Django: ' + want) in fix, fix)
        R.check(self.tag('post list: tagged framework=django, the fix speaks only Django'),
                card['framework'] == 'django' and 'Rails' not in fix and 'SQLAlchemy' not in fix, fix)
        R.check(self.tag('post list: the card names its database and its three statements'),
                card['database'] == 'perfguard_django' and len(card['queryids'] or []) == 3,
                fmt_rows(cards))
        R.check(self.tag('post list: relations from foreign keys, not inferred'),
                card['inferred'] is False, fmt_rows(cards))
        R.check(self.tag('post list: no separate duplicate card for the author lookups'),
                not self.obs.query("SELECT 1 FROM perfguard.findings WHERE route = %s "
                                   "AND category = 'duplicate'", [bad_route]))
        good_cards = self.obs.query('SELECT * FROM perfguard.findings WHERE route = %s', [good_route])
        R.check(self.tag('post list: no card for %s' % good_route), not good_cards, fmt_rows(good_cards))

    def no_drop_advice(self):
        """A fresh migrate: no DROP advice until statistics cover enough time."""
        drops = self.obs.query("SELECT kind, index_name FROM perfguard.index_advice "
                               "WHERE ddl LIKE 'DROP INDEX%%'")
        R.check(self.tag('fresh migrate: index_advice has no DROP advice'), not drops, fmt_rows(drops))
        cards = self.obs.query("SELECT category, detail FROM perfguard.findings "
                               "WHERE suggestion LIKE 'DROP INDEX%%'")
        R.check(self.tag('fresh migrate: findings has no DROP card'), not cards, fmt_rows(cards))
        # what the wait holds back: Django's _like indexes, never scanned
        waiting = self.obs.query("SET perfguard.unused_index_min_age = 0; "
                                 "SELECT index_name FROM perfguard.index_advice "
                                 "WHERE kind = 'unused'")
        self.obs.query('RESET perfguard.unused_index_min_age; SELECT 1')
        print('# without the wait, %d unused indexes would be advised to be dropped: %s'
              % (len(waiting), ', '.join(sorted(r['index_name'] for r in waiting))[:300]))

    # -- all ---------------------------------------------------------------------

    def run(self):
        print('# scope mode: %s' % self.mode)
        self.three_relations()
        self.pattern('forward FK', '/bad/forward-fk/', '/good/forward-fk/',
                     self.expect_n_plus_one('forward FK', 'blog_author',
                                            {"select_related('created_by')": ["select_related('created_by')"]},
                                            AUTHORS, also_duplicates=True),
                     1 + ESSAYS, 1, (1, 1))
        self.pattern('reverse FK', '/bad/reverse-fk/', '/good/reverse-fk/',
                     self.expect_n_plus_one('reverse FK', 'blog_scene',
                                            {'prefetch_related(': ['prefetch_related(']}, ESSAYS),
                     1 + ESSAYS, 2, (1, 0))
        self.pattern('M2M', '/bad/m2m/', '/good/m2m/',
                     self.expect_n_plus_one('M2M', 'blog_tag',
                                            {"prefetch_related(": ["prefetch_related("]}, ESSAYS),
                     1 + ESSAYS, 2, (1, 0))
        self.pattern('deferred field', '/bad/deferred/', '/good/deferred/',
                     self.expect_n_plus_one('deferred field', 'blog_essay',
                                            {'defer/only': ['defer', 'only(']}, ESSAYS),
                     1 + ESSAYS, 1, (1, 0))
        self.pattern('aggregate per row', '/bad/aggregate/', '/good/aggregate/',
                     self.expect_n_plus_one('aggregate per row', 'blog_scene',
                                            {'annotate': ['annotate'], 'Count': ['Count(']}, ESSAYS),
                     1 + ESSAYS, 1, (1, 0))
        self.pattern('duplicates', '/bad/duplicates/1/', '/good/duplicates/1/',
                     self.expect_duplicates('duplicates'), 3, 1, (0, 1))
        self.plan_patterns()
        self.guards()
        self.pattern('write loop', '/bad/write-loop/', '/good/write-loop/',
                     self.expect_write_loop('write loop'), 1 + WRITE_BATCH, 2, (0, 0))
        Essay.objects.filter(title__startswith='draft ').delete()
        self.no_drop_advice()


class _nullcontext:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def main(argv):
    modes = argv[1:] or ['explicit', 'comment']
    observer = Observer()
    for mode in modes:
        with override_settings(PERFGUARD_SCOPE=mode):
            try:
                Runner(mode, observer).run()
            except Exception:
                traceback.print_exc()
                R.check('[%s] the run finished without an unexpected exception' % mode, False)
    if R.skipped:
        print('%d skipped' % R.skipped)
    print('%d passed, %d failed' % (R.passed, R.failed))
    return 1 if R.failed else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
