"""
Test cases of PerfguardTestMixin's collecting guard, some of which fail on
purpose.  Not discovered by the test runner (the file name does not start
with "test"): tests.CollectingGuardTests runs them one by one, inside its
own test's transaction, and checks how each one ended.
"""
from django.db import connection
from django.test import TestCase, override_settings

from perfguard_django.testing import PerfguardTestMixin

from .models import Author, Book, Tag


def library_data():
    authors = Author.objects.bulk_create(Author(name='Author %d' % i) for i in range(10))
    tags = Tag.objects.bulk_create(Tag(name='tag %d' % i) for i in range(3))
    books = Book.objects.bulk_create(
        Book(title='Book %d' % i, author=authors[i % 10]) for i in range(30))
    for i, book in enumerate(books):
        book.tags.add(tags[i % 3])


class CollectingCases(PerfguardTestMixin, TestCase):
    """The mixin's defaults: N+1s collected, test traffic tagged."""

    def setUp(self):
        # not setUpTestData: the cases run without their class set-up
        # (TestCase.tearDownClass would close the connection of the test
        # that runs them)
        library_data()

    def test_three_n_plus_ones(self):
        # fails once, listing the three N+1s of the page
        self.assertEqual(self.client.get('/books/three/').status_code, 200)

    def test_three_fixed(self):
        self.assertEqual(self.client.get('/books/three-fixed/').status_code, 200)

    @override_settings(PERFGUARD_EXPLICIT_SCOPES=True)
    def test_three_n_plus_ones_explicit_scopes(self):
        # the middleware's end_request() leaves the findings to the test's end
        response = self.client.get('/books/three/')
        self.assertEqual(response['X-Perfguard-N-Plus-One'], '3')
        self.assertEqual(self.client.get('/books/good/').status_code, 200)

    def test_n_plus_one_in_the_test_body(self):
        # no request: the statements carry the test's name as their route
        self.assertEqual(len([b.author.name for b in Book.objects.order_by('id')]), 30)

    def test_block_assertion_inside(self):
        # an assertion in the test keeps what the test collected before it
        self.client.get('/books/bad/')
        with self.assertNoNPlusOne():
            self.client.get('/books/good/')

    def test_fails_on_its_own(self):
        # a test that fails by itself reports only its own failure
        self.client.get('/books/bad/')
        self.fail('failed on its own')

    def test_after_a_failure(self):
        # nothing left over from the test before
        self.client.get('/books/good/')
        with connection.cursor() as cursor:
            cursor.execute('SELECT count(*) FROM perfguard.collected()')
            self.assertEqual(cursor.fetchone()[0], 0)


class CollectingEverythingCases(CollectingCases):
    """Duplicates and a bound on the queries per request collected too."""
    perfguard_collect = ('n_plus_one', 'duplicate')
    perfguard_max_queries = 5

    def test_duplicates_and_too_many(self):
        self.client.get('/books/duplicate/')     # 5 identical lookups, 6 queries
        self.client.get('/books/good/')


class UntaggedCases(CollectingCases):
    """perfguard_tag_test = False: collected all the same, recorded as production traffic."""
    perfguard_tag_test = False


class NotCollectingCases(CollectingCases):
    """perfguard_collect = (): tagged, never failed by perfguard."""
    perfguard_collect = ()
