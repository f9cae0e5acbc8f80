"""
PerfguardTestMixin: perfguard's guards for Django tests.

    from django.test import TestCase
    from perfguard_django.testing import PerfguardTestMixin

    class BookViewsTest(PerfguardTestMixin, TestCase):
        def test_list(self):
            self.client.get('/books/')      # every N+1 of the test fails it, once
        def test_list_is_bounded(self):
            with self.assertNoNPlusOne():
                self.client.get('/books/')
            with self.assertMaxQueries(3):
                self.client.get('/books/')

Every test.  The mixin sets perfguard's guards to 'collect' for the test
method (perfguard.on_n_plus_one; the guards named in perfguard_collect), so
the code runs to its end while perfguard keeps each finding, and tags every
statement of the test with perfguard='test' (its own route entry "[test]
<route>", left out of perfguard.findings unless perfguard.include_test is
on; the middleware's route and request id stay).  At the end of the test it
calls perfguard.check_collected(): when anything was found the test fails
once, listing every finding with its statement, count, parent and fix,
followed by the queries the test ran (as assertNumQueries prints them).
Class attributes:

    perfguard_collect = ('n_plus_one',)   # also 'duplicate', 'too_many_queries'; () for none
    perfguard_max_queries = None          # an int: also collect requests with more queries
    perfguard_tag_test = True             # False: statements untagged, findings in the reports

Statements outside a request (the test body, assertions) carry
route='<TestClass>.<test>'; requests made with the test client carry the
middleware's tags.  Only the test method is covered, not setUp().

The assertions.  Each opens an explicit perfguard scope on the connection
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
import re
from contextlib import ExitStack, contextmanager

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections, transaction
from django.test.utils import CaptureQueriesContext

from .middleware import COLLECTING_ATTR, SCOPE_OWNER_ATTR, connection_usable, perfguard_label
from .readiness import PerfguardNotReady, check_ready  # noqa: F401 (PerfguardNotReady: for users)
from .sqlcommenter import CommentWrapper

PERFGUARD_SQLSTATES = {'PF001', 'PF002', 'PF003'}
COLLECTED_SQLSTATE = 'PF004'

# perfguard_collect's names and their settings
GUARDS = {
    'n_plus_one': 'perfguard.on_n_plus_one',
    'duplicate': 'perfguard.on_duplicate',
    'too_many_queries': 'perfguard.on_too_many_queries',
}
MAX_QUERIES = 'perfguard.max_queries_per_request'

# DO blocks are utility statements: perfguard counts them toward no request
CHECK_COLLECTED = 'DO $$BEGIN PERFORM perfguard.check_collected(); END$$'
FORGET_COLLECTED = 'DO $$BEGIN PERFORM count(*) FROM perfguard.collected(); END$$'

# at most this many captured queries in a failure message
MAX_SHOWN_QUERIES = 1000

_TRAILING_COMMENT = re.compile(r"\s*/\*[^*]*'\*/\s*(;?)\s*$")


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


def strip_comment(sql):
    """sql without the sqlcommenter comment at its end."""
    return _TRAILING_COMMENT.sub(r'\1', sql)


def describe_collected(exc):
    """perfguard.check_collected()'s error: the count, every finding, the hint."""
    cause = exc
    while cause is not None and getattr(cause, 'pgcode', None) is None:
        cause = cause.__cause__
    diag = getattr(cause, 'diag', None)
    if diag is None:
        return str(exc)
    return '\n'.join(part for part in ('%s %s' % (diag.sqlstate, diag.message_primary),
                                       diag.message_detail,
                                       diag.message_hint) if part)


def describe_queries(queries):
    """The captured queries, numbered, as assertNumQueries lists them."""
    shown = ['%d. %s' % (i, strip_comment(q['sql']))
             for i, q in enumerate(queries[:MAX_SHOWN_QUERIES], start=1)]
    if len(queries) > MAX_SHOWN_QUERIES:
        shown.append('... (%d more)' % (len(queries) - MAX_SHOWN_QUERIES))
    return 'Captured queries were:\n%s' % '\n'.join(shown)


class PerfguardTestMixin:
    """Mix into django.test.TestCase / TransactionTestCase / SimpleTestCase."""

    # guards set to 'collect' for each test method (keys of GUARDS); () for none
    perfguard_collect = ('n_plus_one',)
    # an int: perfguard.max_queries_per_request for the test, collected too
    perfguard_max_queries = None
    # tag the test's statements perfguard='test' (kept out of the reports)
    perfguard_tag_test = True

    def _callTestMethod(self, method):
        # unittest (Python 3.8+) runs the test method, and only it, here
        with self._perfguard_test():
            super()._callTestMethod(method)

    def _perfguard_settings(self):
        """{setting: value} for the test, from perfguard_collect and perfguard_max_queries."""
        unknown = set(self.perfguard_collect or ()) - set(GUARDS)
        if unknown:
            raise ValueError('perfguard_collect: unknown guard(s) %s (known: %s)'
                             % (', '.join(sorted(unknown)), ', '.join(sorted(GUARDS))))
        gucs = {GUARDS[name]: 'collect' for name in self.perfguard_collect or ()}
        if self.perfguard_max_queries is not None:
            if int(self.perfguard_max_queries) < 1:
                raise ValueError('perfguard_max_queries must be a positive number of queries')
            gucs[MAX_QUERIES] = str(int(self.perfguard_max_queries))
            gucs[GUARDS['too_many_queries']] = 'collect'
        return gucs

    def _perfguard_connections(self):
        """The PostgreSQL connections of PERFGUARD_DATABASES this test may use."""
        allowed = getattr(self, 'databases', ())
        result = []
        for alias in getattr(settings, 'PERFGUARD_DATABASES', [DEFAULT_DB_ALIAS]):
            if (allowed == '__all__' or alias in allowed) and connections[alias].vendor == 'postgresql':
                result.append(connections[alias])
        return result

    @contextmanager
    def _perfguard_test(self):
        gucs = self._perfguard_settings()
        conns = self._perfguard_connections()
        if not conns or not (gucs or self.perfguard_tag_test):
            yield
            return
        label = perfguard_label('%s.%s' % (type(self).__name__, self._testMethodName))
        failures = []
        with ExitStack() as stack:
            started = []        # (connection, saved settings, CaptureQueriesContext)
            if self.perfguard_tag_test:
                # first, so that the statements below belong to the test's request
                for connection in conns:
                    stack.enter_context(connection.execute_wrapper(
                        CommentWrapper({'perfguard': 'test', 'route': label})))
            if gucs:
                for connection in conns:
                    check_ready(connection)
                    saved = self._perfguard_collect(connection, gucs)
                    captured = CaptureQueriesContext(connection)
                    started.append((connection, saved, captured))
                    stack.callback(self._perfguard_check, connection, saved, captured, failures)
                    captured.__enter__()
            try:
                yield
            except BaseException:
                failures.append(None)   # the test failed already: nothing more to say
                raise
        messages = [m for m in failures if m]
        if messages:
            raise self.failureException('\n\n'.join(messages))

    @staticmethod
    def _perfguard_collect(connection, gucs):
        """Set the guards to 'collect' (forgetting stale findings); the previous settings."""
        saved = {}
        with connection.cursor() as cursor:
            for name in sorted(set(gucs) | set(GUARDS.values())):
                cursor.execute('SHOW %s' % name)
                saved[name] = cursor.fetchone()[0]
            cursor.execute(FORGET_COLLECTED)
            for name, value in sorted(gucs.items()):
                cursor.execute('SET %s = %%s' % name, [value])
        setattr(connection, COLLECTING_ATTR, {name: value for name, value in gucs.items()
                                              if value == 'collect'})
        return saved

    @staticmethod
    def _perfguard_check(connection, saved, captured, failures):
        """
        Restore the settings and call perfguard.check_collected(): its
        failure, with the captured queries, goes to failures.  When the
        test failed already (None in failures), forget the findings instead.
        """
        captured.__exit__(None, None, None)
        setattr(connection, COLLECTING_ATTR, None)
        if not connection_usable(connection):
            return      # the next test forgets what is left
        test_failed = None in failures
        with connection.cursor() as cursor:
            try:
                if test_failed:
                    cursor.execute(FORGET_COLLECTED)
                    return
                # checked with the test's settings (the message names its
                # max_queries_per_request), restored after
                with ExitStack() as stack:
                    if connection.in_atomic_block:
                        # a savepoint: the test's transaction stays usable
                        stack.enter_context(transaction.atomic(using=connection.alias))
                    cursor.execute(CHECK_COLLECTED)
            except DatabaseError as exc:
                cause = exc.__cause__
                if getattr(cause, 'pgcode', None) != COLLECTED_SQLSTATE:
                    raise
                failures.append('%s\n%s' % (describe_collected(exc),
                                            describe_queries(captured.captured_queries)))
            finally:
                for name, value in sorted(saved.items()):
                    cursor.execute('SET %s = %%s' % name, [value])

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
                    # a query, like SHOW), so the guards never judge the
                    # queries that ran before the block.
                    for name in sorted(set(gucs) | set(GUARDS.values())):
                        cursor.execute('SHOW %s' % name)
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
                    # end_request() with the guards off: at 'collect' (the
                    # test's guards) it would report the test's findings here
                    for name in sorted(GUARDS.values()):
                        cursor.execute("SET %s = 'off'" % name)
                    cursor.execute('SELECT * FROM perfguard.end_request()')
                    for name, value in sorted(saved.items()):
                        cursor.execute('SET %s = %%s' % name, [value])
        if failure is not None:
            raise self.failureException(describe_error(failure)) from failure
