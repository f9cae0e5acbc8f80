"""
PerfguardTestMixin: perfguard's guards as Django test assertions.

    from django.test import TestCase
    from perfguard_django.testing import PerfguardTestMixin

    class BookViewsTest(PerfguardTestMixin, TestCase):
        def test_list(self):
            with self.assertNoNPlusOne():
                self.client.get('/books/')
            with self.assertMaxQueries(3):
                self.client.get('/books/')

Each assertion opens an explicit perfguard scope on the connection
(SELECT perfguard.begin_request(label)), sets the guard for the block
(perfguard.on_n_plus_one / on_duplicate / on_too_many_queries = 'error', and
perfguard.max_queries_per_request for assertMaxQueries), and closes the scope
and resets the settings afterwards.  The statement that crosses a threshold
fails inside the database with SQLSTATE PF001 (N+1), PF002 (duplicate) or
PF003 (too many queries); the assertion turns that error into a test failure
whose message carries perfguard's message, the statement, its parent and the
suggested fix.

Inside a transaction (TestCase wraps every test in one) the block runs in a
savepoint, so a failed assertion leaves the test's transaction usable.
Unlike assertNumQueries, the thresholds are perfguard's settings
(perfguard.n_plus_one_threshold, duplicate_threshold), so a test does not
break when a page gains one legitimate query.

When the test database lacks the extension, or the server does not preload
the library, the assertion raises PerfguardNotReady (an
ImproperlyConfigured) that says what to do.  perfguard_django's migration
creates the extension in the test database when the role is a superuser.
"""
from contextlib import ExitStack, contextmanager

from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction

from .middleware import SCOPE_OWNER_ATTR, connection_usable, perfguard_label
from .readiness import PerfguardNotReady, check_ready  # noqa: F401 (PerfguardNotReady: for users)

PERFGUARD_SQLSTATES = {'PF001', 'PF002', 'PF003'}


def perfguard_sqlstate(exc):
    """The SQLSTATE of a perfguard guard error wrapped in a Django DatabaseError, else None."""
    cause = exc
    while cause is not None:
        code = getattr(cause, 'pgcode', None)
        if code:
            return code if code in PERFGUARD_SQLSTATES else None
        cause = cause.__cause__
    return None


def describe_error(exc):
    """perfguard's error as a multi-line text: SQLSTATE, message, detail, hint."""
    cause = exc
    while cause is not None and getattr(cause, 'pgcode', None) is None:
        cause = cause.__cause__
    diag = getattr(cause, 'diag', None)
    if diag is None:
        return str(exc)
    lines = ['%s %s' % (diag.sqlstate, diag.message_primary)]
    if diag.message_detail:
        lines.append(diag.message_detail)
    if diag.message_hint:
        lines.append('Suggestion: %s' % diag.message_hint)
    return '\n'.join(lines)


class PerfguardTestMixin:
    """Mix into django.test.TestCase / TransactionTestCase / SimpleTestCase."""

    def assertNoNPlusOne(self, using=DEFAULT_DB_ALIAS, label=None):
        """Fail when a SELECT runs perfguard.n_plus_one_threshold times with different parameters."""
        return self._perfguard_guard({'perfguard.on_n_plus_one': 'error'}, using, label)

    def assertNoDuplicates(self, using=DEFAULT_DB_ALIAS, label=None):
        """Fail when one statement runs twice (duplicate_threshold) with the same parameters."""
        return self._perfguard_guard({'perfguard.on_duplicate': 'error'}, using, label)

    def assertMaxQueries(self, num, using=DEFAULT_DB_ALIAS, label=None):
        """Fail when the block runs more than num queries (like assertNumQueries, as an upper bound)."""
        if int(num) < 1:
            raise ValueError('assertMaxQueries needs a positive number of queries')
        return self._perfguard_guard({'perfguard.max_queries_per_request': str(int(num)),
                                      'perfguard.on_too_many_queries': 'error'}, using, label)

    @contextmanager
    def _perfguard_guard(self, gucs, using, label):
        connection = connections[using]
        label = perfguard_label(label or '%s.%s' % (type(self).__name__, self._testMethodName))
        failure = None
        saved = {}
        opened = False
        # PerfguardNotReady, saying what to do, when the database lacks the
        # extension or the server does not preload it (instead of
        # 'schema "perfguard" does not exist')
        check_ready(connection)
        setattr(connection, SCOPE_OWNER_ATTR, label)
        try:
            with ExitStack() as stack:
                if connection.in_atomic_block:
                    stack.enter_context(transaction.atomic(using=using))
                with connection.cursor() as cursor:
                    # The scope first, then the guards, set with SET (a
                    # utility statement, which perfguard does not count as
                    # a query), so the guards never judge the queries that
                    # ran before the block.
                    for name in sorted(gucs):
                        cursor.execute('SELECT current_setting(%s)', [name])
                        saved[name] = cursor.fetchone()[0]
                    cursor.execute('SELECT perfguard.begin_request(%s)', [label])
                    opened = True
                    for name, value in sorted(gucs.items()):
                        cursor.execute('SET %s = %%s' % name, [value])
                yield
        except DatabaseError as exc:
            if perfguard_sqlstate(exc) is None:
                raise
            failure = exc
        finally:
            setattr(connection, SCOPE_OWNER_ATTR, None)
            if opened and connection_usable(connection):
                with connection.cursor() as cursor:
                    for name, value in sorted(saved.items()):
                        cursor.execute('SET %s = %%s' % name, [value])
                    cursor.execute('SELECT * FROM perfguard.end_request()')
        if failure is not None:
            raise self.failureException(describe_error(failure)) from failure
