"""
Run by run_e2e.sh against the same cluster restarted without
shared_preload_libraries (not discovered by the default run: the file name
does not start with "test").
"""
import unittest

from django.db import connection
from django.test import TestCase

from perfguard_django.testing import PerfguardNotReady, PerfguardTestMixin

from . import collecting
from .models import Author


class NotPreloadedTests(PerfguardTestMixin, TestCase):
    # these tests check what the assertions say; CollectingNotPreloaded
    # what a test with the collecting guard says
    perfguard_collect = ()

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


class NotPreloadedCollectingTests(TestCase):
    def test_collecting_test_says_to_preload(self):
        result = unittest.TestResult()
        collecting.CollectingCases('test_three_fixed')(result)
        self.assertEqual((len(result.errors), len(result.failures)), (1, 0))
        message = result.errors[0][1]
        self.assertIn('PerfguardNotReady', message)
        self.assertIn("shared_preload_libraries = 'perfguard'", message)
        # the test's transaction is still usable
        self.assertEqual(Author.objects.count(), 0)
