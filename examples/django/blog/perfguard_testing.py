"""
Test helpers: turn perfguard's guards on for a block of test code.

    from blog.perfguard_testing import PerfguardAssertionsMixin

    class EssayViewTests(PerfguardAssertionsMixin, TestCase):
        def test_list_has_no_n_plus_one(self):
            with self.assertNoNPlusOne():
                self.client.get('/good/forward-fk/')

Inside the block the session runs with perfguard.on_n_plus_one = 'error'
(or on_duplicate), so the statement that makes a request an N+1 fails with
an error that names the repeated query; the helper turns that error into a
test failure, like assertNumQueries does, but without a number to maintain.

perfguard_guard() is the lower-level context manager: it sets any
perfguard.* settings for the block and restores them afterwards.  Inside a
transaction (Django's TestCase wraps every test in one) the block runs in a
savepoint, so a guard error rolls back to it, the settings included, and
the test's transaction stays usable.
"""
import re
from contextlib import contextmanager

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

_SETTING_NAME = re.compile(r'^[a-z_]+$')


def _set(connection, guards):
    with connection.cursor() as cursor:
        for name, value in guards.items():
            cursor.execute('SELECT set_config(%s, %s, false)', ['perfguard.' + name, str(value)])


def _reset(connection, guards):
    with connection.cursor() as cursor:
        for name in guards:
            cursor.execute('RESET perfguard.%s' % name)


@contextmanager
def perfguard_guard(using=DEFAULT_DB_ALIAS, **guards):
    """SET perfguard.<name> = <value> for each keyword for the block; RESET them after it."""
    for name in guards:
        if not _SETTING_NAME.match(name):
            raise ValueError('not a perfguard setting name: %r' % (name,))
    connection = connections[using]
    if connection.in_atomic_block:
        with transaction.atomic(using=using):
            _set(connection, guards)
            yield
            _reset(connection, guards)
    else:
        _set(connection, guards)
        try:
            yield
        finally:
            _reset(connection, guards)


class PerfguardAssertionsMixin:
    """assertNoNPlusOne() / assertNoDuplicateQueries() for unittest / Django test cases."""

    @contextmanager
    def _assert_guard(self, what, using, **guards):
        try:
            with perfguard_guard(using, **guards):
                yield
        except DatabaseError as exc:
            raise self.failureException('perfguard found %s in the block:\n%s' % (what, exc)) from exc

    def assertNoNPlusOne(self, using=DEFAULT_DB_ALIAS):
        return self._assert_guard('an N+1 query pattern', using, on_n_plus_one='error')

    def assertNoDuplicateQueries(self, using=DEFAULT_DB_ALIAS):
        return self._assert_guard('duplicate queries', using, on_duplicate='error')
