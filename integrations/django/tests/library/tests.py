"""
Tests of perfguard_django against a live PostgreSQL with perfguard preloaded.

Each guard is checked both ways: the bad view must make the assertion fail
with perfguard's error (SQLSTATE, statement, fix), the good view must pass.
"""
import re
import sys
import time
import types
import unittest
from contextlib import contextmanager
from unittest import mock

from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from perfguard_django.sqlcommenter import (append_comment, format_comment, otel_traceparent,
                                           request_id_tags)
from perfguard_django.testing import PerfguardNotReady, PerfguardTestMixin

from . import collecting
from .models import Author, Book, Tag


def perfguard_rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


@contextmanager
def recorded_statements():
    """The statements sent in the block, as the server got them (with the middleware's comment)."""
    with CaptureQueriesContext(connection) as captured:
        statements = []
        yield statements
    statements.extend(q['sql'] for q in captured.captured_queries)


def tag(sql, key):
    m = re.search(r"%s='([^']*)'" % key, sql)
    return m.group(1) if m else None


def fake_opentelemetry(trace_id, span_id, valid=True):
    """A stand-in for opentelemetry.trace with one current span (OpenTelemetry is not installed here)."""
    context = types.SimpleNamespace(trace_id=trace_id, span_id=span_id, trace_flags=1,
                                    is_valid=valid)
    span = types.SimpleNamespace(get_span_context=lambda: context)
    module = types.ModuleType('opentelemetry.trace')
    module.get_current_span = lambda: span
    return mock.patch.dict(sys.modules, {'opentelemetry.trace': module})


class SqlcommenterTests(TestCase):
    def test_format_sorts_and_encodes(self):
        self.assertEqual(
            format_comment({'route': 'books/<int:pk>/', 'framework': 'django',
                            'controller': "it's", 'action': None}),
            "/*controller='it%27s',framework='django',route='books%2F%3Cint%3Apk%3E%2F'*/")

    def test_append_doubles_percent_with_params(self):
        self.assertEqual(append_comment('SELECT %s;', "/*route='a%2F'*/", True),
                         "SELECT %s /*route='a%%2F'*/;")
        self.assertEqual(append_comment('SELECT 1', "/*route='a%2F'*/", False),
                         "SELECT 1 /*route='a%2F'*/")


    def test_request_id_is_random_hex_without_opentelemetry(self):
        with mock.patch.dict(sys.modules, {'opentelemetry.trace': None}):
            self.assertIsNone(otel_traceparent())
            first, second = request_id_tags(), request_id_tags()
        self.assertEqual(set(first), {'request_id'})
        self.assertRegex(first['request_id'], r'^[0-9a-f]{32}$')
        self.assertNotEqual(first, second)

    def test_opentelemetry_span_gives_the_traceparent(self):
        with fake_opentelemetry(0xabc, 0x12):
            self.assertEqual(request_id_tags(), {
                'traceparent': '00-00000000000000000000000000000abc-0000000000000012-01'})
        with fake_opentelemetry(0, 0, valid=False):
            self.assertEqual(set(request_id_tags()), {'request_id'})


class LibraryTests(PerfguardTestMixin, TestCase):
    # these tests read what perfguard records of the views, bad ones
    # included: no collecting guard, no test tag
    perfguard_collect = ()
    perfguard_tag_test = False

    @classmethod
    def setUpTestData(cls):
        authors = Author.objects.bulk_create(Author(name='Author %d' % i) for i in range(10))
        tags = Tag.objects.bulk_create(Tag(name='tag %d' % i) for i in range(3))
        books = Book.objects.bulk_create(
            Book(title='Book %d' % i, author=authors[i % 10]) for i in range(30))
        for i, book in enumerate(books):
            book.tags.add(tags[i % 3])

    def setUp(self):
        perfguard_rows('SELECT perfguard.reset()')

    def test_bad_view_fails_assert_no_n_plus_one(self):
        with self.assertRaises(AssertionError) as cm:
            with self.assertNoNPlusOne():
                self.client.get('/books/bad/')
        message = str(cm.exception)
        self.assertIn('PF001', message)
        self.assertIn('N+1 query', message)
        self.assertIn('FROM "library_author" WHERE "library_author"."id" = $1', message)
        self.assertIn("select_related('author')", message)

    def test_good_view_passes_assert_no_n_plus_one(self):
        with self.assertNoNPlusOne():
            response = self.client.get('/books/good/')
        self.assertEqual(response.status_code, 200)
        self.assertEqual(len(response.content.decode().splitlines()), 30)

    def test_reverse_fk_n_plus_one(self):
        with self.assertRaises(AssertionError) as cm:
            with self.assertNoNPlusOne():
                self.client.get('/authors/bad/')
        self.assertIn('PF001', str(cm.exception))
        self.assertIn('FROM "library_book"', str(cm.exception))
        with self.assertNoNPlusOne():
            self.assertEqual(self.client.get('/authors/good/').status_code, 200)

    def test_assert_no_duplicates(self):
        with self.assertRaises(AssertionError) as cm:
            with self.assertNoDuplicates():
                self.client.get('/books/duplicate/')
        self.assertIn('PF002', str(cm.exception))
        with self.assertNoDuplicates():
            self.client.get('/books/good/')

    def test_assert_max_queries(self):
        with self.assertMaxQueries(1):
            self.client.get('/books/good/')
        with self.assertRaises(AssertionError) as cm:
            with self.assertMaxQueries(5):
                self.client.get('/books/good/')
                self.client.get('/books/bad/')
        self.assertIn('PF003', str(cm.exception))
        self.assertIn('max_queries_per_request (5)', str(cm.exception))

    def test_state_restored_after_failure(self):
        with self.assertRaises(AssertionError):
            with self.assertNoNPlusOne():
                self.client.get('/books/bad/')
        # the test's transaction is still usable and the guard is off again
        self.assertEqual(Book.objects.count(), 30)
        self.assertEqual(perfguard_rows("SELECT current_setting('perfguard.on_n_plus_one')"),
                         [('off',)])
        # without the guard the bad view runs
        self.assertEqual(self.client.get('/books/bad/').status_code, 200)

    def test_other_database_errors_propagate(self):
        from django.db import DatabaseError
        with self.assertRaises(DatabaseError):
            with self.assertNoNPlusOne():
                perfguard_rows('SELECT * FROM no_such_table')

    def test_middleware_tags_name_the_route(self):
        # comment mode: the route tag of each request starts a scope labelled
        # with the URL pattern; the next request's tags close it
        self.client.get('/books/bad/')
        self.client.get('/books/good/')
        rows = perfguard_rows(
            'SELECT route, suggestion FROM perfguard.n_plus_one ORDER BY route')
        self.assertEqual(len(rows), 1, rows)
        self.assertEqual(rows[0][0], 'books/bad/')
        self.assertIn("select_related('author')", rows[0][1])
        routes = [r[0] for r in perfguard_rows('SELECT route FROM perfguard.requests ORDER BY route')]
        self.assertIn('books/bad/', routes)

    def test_middleware_sends_one_request_id_per_request(self):
        ids = []
        for path in ('/books/bad/', '/books/good/', '/books/good/'):
            with recorded_statements() as statements:
                self.client.get(path)
            self.assertTrue(statements)
            got = {tag(sql, 'request_id') for sql in statements}
            self.assertEqual(len(got), 1, statements)
            self.assertRegex(got.pop() or '', r'^[0-9a-f]{32}$')
            self.assertIsNone(tag(statements[0], 'traceparent'))
            ids.append(tag(statements[0], 'request_id'))
        self.assertEqual(len(set(ids)), 3, ids)

    def test_middleware_sends_the_opentelemetry_traceparent(self):
        with fake_opentelemetry(0x4bf92f3577b34da6a3ce929d0e0e4736, 0x00f067aa0ba902b7):
            with recorded_statements() as statements:
                self.client.get('/books/bad/')
        self.assertEqual(len(statements), 31)
        for sql in statements:
            self.assertEqual(tag(sql, 'traceparent'),
                             '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01')
            self.assertIsNone(tag(sql, 'request_id'))

    @override_settings(PERFGUARD_REQUEST_ID=False)
    def test_middleware_request_id_can_be_turned_off(self):
        with recorded_statements() as statements:
            self.client.get('/books/good/')
        self.assertEqual([tag(sql, 'request_id') for sql in statements], [None])
        self.assertEqual(tag(statements[0], 'route'), 'books%2Fgood%2F')

    def test_back_to_back_requests_on_one_connection_stay_apart(self):
        # issue 15: ten requests of a page with no finding, back to back on
        # one connection, are ten requests and report nothing (not one
        # request of 20 queries with duplicates and a repeating sequence)
        with connection.cursor() as cursor:     # undone by the test's rollback
            cursor.execute("SET perfguard.request_gap = '100ms'")
        for _ in range(10):
            self.client.get('/authors/good/')
        time.sleep(0.3)     # the requests end after request_gap
        self.assertEqual(perfguard_rows(
            "SELECT requests, queries, max_queries FROM perfguard.requests"
            " WHERE route = 'authors/good/'"), [(10, 20, 2)])
        self.assertEqual(perfguard_rows(
            "SELECT category, query FROM perfguard.findings WHERE route = 'authors/good/'"), [])

    @override_settings(PERFGUARD_EXPLICIT_SCOPES=True)
    def test_middleware_explicit_scopes(self):
        response = self.client.get('/books/bad/')
        self.assertEqual(response['X-Perfguard-N-Plus-One'], '1')
        self.assertEqual(response['X-Perfguard-Queries'], '31')
        response = self.client.get('/books/good/')
        self.assertEqual(response['X-Perfguard-N-Plus-One'], '0')
        self.assertEqual(response['X-Perfguard-Queries'], '1')
        self.assertEqual(perfguard_rows(
            "SELECT requests, max_queries FROM perfguard.requests WHERE route = 'books/bad/'"),
            [(1, 31)])

    @override_settings(PERFGUARD_EXPLICIT_SCOPES=True)
    def test_middleware_explicit_scope_starts_without_the_request_id(self):
        # a begin_request() with an id would first open the shared request of
        # that id, a one-query request of its own
        with recorded_statements() as statements:
            self.client.get('/books/good/')
        self.assertIn('perfguard.begin_request', statements[0])
        self.assertIsNone(tag(statements[0], 'request_id'))
        self.assertEqual(tag(statements[0], 'route'), 'books%2Fgood%2F')
        self.assertIsNotNone(tag(statements[1], 'request_id'))

    @override_settings(PERFGUARD_EXPLICIT_SCOPES=True)
    def test_mixin_scope_wins_over_explicit_middleware(self):
        # the middleware must not replace the assertion's scope with its own
        with self.assertRaises(AssertionError) as cm:
            with self.assertNoNPlusOne():
                self.client.get('/books/bad/')
        self.assertIn('PF001', str(cm.exception))
        self.assertIn('in request "LibraryTests.test_mixin_scope_wins_over_explicit_', str(cm.exception))


class SetupTests(PerfguardTestMixin, TestCase):
    """The way in: the migration creates the extension; a missing one says what to do."""
    # test_missing_extension_says_what_to_do drops the extension
    perfguard_collect = ()

    def test_migration_created_the_extension(self):
        # run_e2e.sh leaves template1 without perfguard: the test database
        # has it because perfguard_django's migration created it
        self.assertEqual(perfguard_rows(
            "SELECT extversion FROM pg_extension WHERE extname = 'perfguard'"), [('1.0',)])
        self.assertEqual(perfguard_rows(
            "SELECT name FROM django_migrations WHERE app = 'perfguard_django'"),
            [('0001_create_extension',)])

    def test_missing_extension_says_what_to_do(self):
        # rolled back with the test's transaction
        with connection.cursor() as cursor:
            cursor.execute('DROP EXTENSION perfguard')
        with self.assertRaises(PerfguardNotReady) as cm:
            with self.assertNoNPlusOne():
                self.client.get('/books/bad/')
        message = str(cm.exception)
        self.assertIn('the extension is not installed in database "%s"'
                      % connection.settings_dict['NAME'], message)
        self.assertIn("Add 'perfguard_django' to INSTALLED_APPS", message)
        self.assertIn('CREATE EXTENSION perfguard', message)
        self.assertIn('template1', message)
        self.assertIn("shared_preload_libraries = 'perfguard'", message)
        self.assertNotIn('does not exist', message)
        # the test's transaction is still usable
        self.assertEqual(Book.objects.count(), 0)


def run_case(case_class, name):
    """Run one test of library.collecting; its unittest.TestResult."""
    result = unittest.TestResult()
    case_class(name)(result)     # __call__: with the client and the test's transaction
    for _, text in result.failures + result.errors:
        print('--- %s.%s:\n%s' % (case_class.__name__, name, text))
    return result


def failure_of(result):
    """The message of the one failure of a result ('' when it has none or more, or errors)."""
    if len(result.failures) != 1 or result.errors:
        return ''
    return result.failures[0][1]


class CollectingGuardTests(TestCase):
    """PerfguardTestMixin's collecting guard, on the test cases of library.collecting."""

    def setUp(self):
        perfguard_rows('SELECT perfguard.reset()')

    def test_three_n_plus_ones_fail_once_listing_all_three(self):
        message = failure_of(run_case(collecting.CollectingCases, 'test_three_n_plus_ones'))
        self.assertIn('PF004 perfguard: 3 findings', message)
        for number, statement, fix in (
                ('1', 'FROM "library_author" WHERE "library_author"."id" = $1',
                 "select_related('author')"),
                ('2', 'INNER JOIN "library_book_tags"', "prefetch_related('tags')"),
                ('3', 'SELECT COUNT(*) AS "__count" FROM "library_book" WHERE '
                      '"library_book"."author_id" = $1', "annotate(book_count=Count('book'))"),
        ):
            finding = re.search(r'^%s\. N\+1 query in request "\[test\] books/three/": '
                                r'ran (\d+) times with \d+ different parameter sets: (.*)\n'
                                r'   parent: (.*)\n   fix: (.*)$' % number, message, re.M)
            self.assertIsNotNone(finding, 'finding %s in:\n%s' % (number, message))
            self.assertIn(statement, finding.group(2))
            self.assertIn(fix, finding.group(4))
            self.assertGreaterEqual(int(finding.group(1)), 10)
        self.assertNotIn('4. N+1', message.split('Captured queries were:')[0])
        # the captured queries, as assertNumQueries prints them (72: 1 + 30 + 30 + 1 + 10)
        self.assertIn('Captured queries were:\n1. SELECT "library_book"."id"', message)
        self.assertIn('\n72. SELECT COUNT(*)', message)
        self.assertNotIn('\n73. ', message)
        self.assertNotIn("request_id=", message)

    def test_the_fixed_twin_passes(self):
        result = run_case(collecting.CollectingCases, 'test_three_fixed')
        self.assertTrue(result.wasSuccessful() and result.testsRun == 1)

    def test_test_traffic_is_kept_out_of_the_findings(self):
        run_case(collecting.CollectingCases, 'test_three_n_plus_ones')
        self.assertEqual(perfguard_rows(
            "SELECT count(*) FROM perfguard.findings WHERE route LIKE '%%books/three/%%'"), [(0,)])
        self.assertEqual(perfguard_rows(
            "SELECT count(*) FROM perfguard.n_plus_one WHERE route LIKE '%%books/three/%%'"), [(0,)])
        self.assertEqual(perfguard_rows(
            "SELECT requests FROM perfguard.requests WHERE route LIKE '%%books/three/%%'"), [(1,)])
        self.assertEqual(perfguard_rows(
            "SELECT route FROM perfguard.requests WHERE route LIKE '%%books/three/%%'"),
            [('[test] books/three/',)])
        with connection.cursor() as cursor:     # undone by the test's rollback
            cursor.execute('SET perfguard.include_test = on')
        self.assertEqual(perfguard_rows(
            "SELECT count(*) FROM perfguard.n_plus_one WHERE route = '[test] books/three/'"), [(3,)])
        # the author and tags of each book are also one repeating sequence
        self.assertIn(('n_plus_one',), perfguard_rows(
            "SELECT category FROM perfguard.findings WHERE route = '[test] books/three/'"))

    def test_settings_are_restored(self):
        run_case(collecting.CollectingCases, 'test_three_n_plus_ones')
        self.assertEqual(perfguard_rows("SELECT current_setting('perfguard.on_n_plus_one')"),
                         [('off',)])
        self.assertEqual(perfguard_rows('SELECT count(*) FROM perfguard.collected()'), [(0,)])
        self.assertEqual(connection.execute_wrappers, [])

    def test_explicit_scopes_leave_the_findings_to_the_test(self):
        message = failure_of(run_case(collecting.CollectingCases,
                                      'test_three_n_plus_ones_explicit_scopes'))
        self.assertIn('PF004 perfguard: 3 findings', message)
        self.assertIn('3. N+1 query in request "[test] books/three/"', message)

    def test_n_plus_one_in_the_test_body(self):
        message = failure_of(run_case(collecting.CollectingCases,
                                      'test_n_plus_one_in_the_test_body'))
        self.assertIn('PF004 perfguard: 1 finding\n', message)
        self.assertIn('1. N+1 query in request '
                      '"[test] CollectingCases.test_n_plus_one_in_the_test_body"', message)

    def test_block_assertion_keeps_the_collected_findings(self):
        message = failure_of(run_case(collecting.CollectingCases, 'test_block_assertion_inside'))
        self.assertIn('PF004 perfguard: 1 finding\n', message)
        self.assertIn('1. N+1 query in request "[test] books/bad/"', message)

    def test_a_test_that_fails_on_its_own_reports_only_that(self):
        message = failure_of(run_case(collecting.CollectingCases, 'test_fails_on_its_own'))
        self.assertIn('AssertionError: failed on its own', message)
        self.assertNotIn('PF004', message)
        # and leaves nothing to the next test
        self.assertTrue(run_case(collecting.CollectingCases, 'test_after_a_failure').wasSuccessful())

    def test_duplicates_and_too_many_queries_when_asked(self):
        message = failure_of(run_case(collecting.CollectingEverythingCases,
                                      'test_duplicates_and_too_many'))
        # the duplicate, the same lookup as an N+1 of one value, and the bound
        self.assertIn('PF004 perfguard: 3 findings', message)
        self.assertRegex(message, r'\n\d\. duplicate query in request "\[test\] books/duplicate/": '
                                  r'the same parameters ran 5 times')
        self.assertRegex(message, r'\n\d\. N\+1 query in request "\[test\] books/duplicate/": '
                                  r'ran 5 times with 1 different parameter sets')
        self.assertRegex(message, r'\n\d\. request "\[test\] books/duplicate/" ran 6 queries, '
                                  r'more than perfguard.max_queries_per_request \(5\)')
        self.assertTrue(run_case(collecting.CollectingEverythingCases,
                                 'test_three_fixed').wasSuccessful())

    def test_untagged_collecting_test(self):
        message = failure_of(run_case(collecting.UntaggedCases, 'test_three_n_plus_ones'))
        self.assertIn('3. N+1 query in request "books/three/"', message)
        self.assertEqual(perfguard_rows(
            "SELECT count(*) FROM perfguard.n_plus_one WHERE route = 'books/three/'"), [(3,)])

    def test_not_collecting(self):
        self.assertTrue(run_case(collecting.NotCollectingCases,
                                 'test_three_n_plus_ones').wasSuccessful())


class TestTrafficTests(PerfguardTestMixin, TestCase):
    """The test tag goes in the one comment of each statement, next to the middleware's tags."""
    perfguard_collect = ()

    def test_one_comment(self):
        with recorded_statements() as statements:
            self.client.get('/books/good/')
            Author.objects.count()
        self.assertEqual(len(statements), 2)
        request, body = statements
        self.assertEqual(request.count('/*'), 1, request)
        self.assertEqual(tag(request, 'perfguard'), 'test')
        self.assertRegex(tag(request, 'request_id'), r'^[0-9a-f]{32}$')
        self.assertEqual(tag(request, 'route'), 'books%2Fgood%2F')
        self.assertEqual(tag(request, 'controller'), 'books-good')
        self.assertEqual(body.count('/*'), 1, body)
        self.assertEqual(tag(body, 'perfguard'), 'test')
        self.assertEqual(tag(body, 'route'),
                         'TestTrafficTests.test_one_comment')
        self.assertIsNone(tag(body, 'request_id'))

    def test_own_comment_is_kept(self):
        # perfguard_django's checks carry /*perfguard='ignore'*/ and keep it
        with recorded_statements() as statements:
            perfguard_rows("SELECT 1 /*perfguard='ignore'*/")
        self.assertEqual(statements, ["SELECT 1 /*perfguard='ignore'*/"])
