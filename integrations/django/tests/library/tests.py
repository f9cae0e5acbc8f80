"""
Tests of perfguard_django against a live PostgreSQL with perfguard preloaded.

Each guard is checked both ways: the bad view must make the assertion fail
with perfguard's error (SQLSTATE, statement, fix), the good view must pass.
"""
from django.db import connection
from django.test import TestCase, override_settings

from perfguard_django.sqlcommenter import append_comment, format_comment
from perfguard_django.testing import PerfguardNotReady, PerfguardTestMixin

from .models import Author, Book, Tag


def perfguard_rows(sql, params=None):
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


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
