"""
Run by run_e2e.sh against the same cluster restarted without
shared_preload_libraries (not discovered by the default run: the file name
does not start with "test").
"""
from django.db import connection
from django.test import TestCase

from perfguard_django.testing import PerfguardNotReady, PerfguardTestMixin

from .models import Author


class NotPreloadedTests(PerfguardTestMixin, TestCase):
    def test_migration_created_the_extension_anyway(self):
        # CREATE EXTENSION works without preloading
        with connection.cursor() as cursor:
            cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'perfguard'")
            self.assertEqual(cursor.fetchall(), [('1.0',)])

    def test_guard_says_to_preload(self):
        with self.assertRaises(PerfguardNotReady) as cm:
            with self.assertNoNPlusOne():
                self.client.get('/books/good/')
        message = str(cm.exception)
        self.assertIn("shared_preload_libraries = 'perfguard'", message)
        self.assertIn('restart PostgreSQL', message)
        # the test's transaction is still usable
        self.assertEqual(Author.objects.count(), 0)
