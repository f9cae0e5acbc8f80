"""
Run the perfguard_django tests with Django's test runner.

    runtests.py [LABEL...]      default: library (the tests in library/test*.py)

Prints one line "django tests: N passed, M failed" and exits non-zero on a
failure.  The database comes from PGHOST/PGPORT/PGUSER; the test database is
created from template1, and perfguard_django's migration creates the
perfguard extension in it (the role must be a superuser).
"""
import os
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]
os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'testproject.settings')

import django  # noqa: E402
from django.test.runner import DiscoverRunner  # noqa: E402


class CountingRunner(DiscoverRunner):
    def run_suite(self, suite, **kwargs):
        result = super().run_suite(suite, **kwargs)
        self.counts = (result.testsRun - len(result.failures) - len(result.errors),
                       len(result.failures) + len(result.errors))
        return result


def main():
    django.setup()
    runner = CountingRunner(verbosity=2, interactive=False)
    failures = runner.run_tests(sys.argv[1:] or ['library'])
    passed, failed = getattr(runner, 'counts', (0, 1))
    print('django tests: %d passed, %d failed' % (passed, failed))
    return 1 if failures or failed else 0


if __name__ == '__main__':
    unittest.installHandler()
    sys.exit(main())
