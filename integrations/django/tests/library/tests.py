"""
Tests of perfguard_django against a live PostgreSQL with perfguard preloaded.

Each guard is checked both ways: the bad view must make the assertion fail
with perfguard's error (SQLSTATE, statement, fix), the good view must pass.
"""
import re
import sys
import time
import types
from contextlib import contextmanager
from unittest import mock

from django.db import connection
from django.test import TestCase, override_settings
from django.test.utils import CaptureQueriesContext

from perfguard_django.sqlcommenter import (append_comment, format_comment, otel_traceparent,
                                           request_id_tags)
from perfguard_django.testing import PerfguardNotReady, PerfguardTestMixin

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
