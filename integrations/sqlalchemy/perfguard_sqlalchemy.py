"""
perfguard_sqlalchemy: SQLAlchemy (1.4+) integration of the perfguard
PostgreSQL extension.

    from perfguard_sqlalchemy import instrument, tagged, no_n_plus_one

    instrument(engine, framework='flask')      # once, at start-up
    with tagged(route='/posts', controller='posts.index'):
        ...                                     # one request: its statements carry the tags
    with no_n_plus_one(session):                # in a test
        ...                                     # PerfguardError on an N+1

instrument() adds a before_cursor_execute listener that appends a
sqlcommenter comment to every statement of the engine:

    SELECT ... /*controller='posts.index',framework='flask',request_id='9f0c...',route='%2Fposts'*/

keys sorted, keys and values URL-encoded, values in single quotes.  The tags
are the engine's static tags plus those of the innermost tagged() block.

The outermost tagged() block is one request: it adds the request's id, the
traceparent of the current OpenTelemetry span when there is one, else a
fresh random request_id (32 hex digits); nested blocks keep it.  perfguard
identifies a request by the trace id of traceparent, else by request_id, on
whatever backend runs its statements: SQLAlchemy's pool may hand a request's
statements to different connections, and behind a transaction pooler
(pgbouncer) every transaction may run on another server connection.  So the
id lives with the request in a contextvar (threads and asyncio tasks keep
theirs apart), never on a connection.  Pass request_id='...' or
traceparent='...' to tagged() to use your own; request_id=None sends none
(then the tags and request_gap delimit requests, per backend).

A test suite's guard: collecting(session, label) around a test, or the
pytest fixture perfguard_test (a plain generator function; in conftest.py:
perfguard = pytest.fixture(autouse=True)(perfguard_test)), sets perfguard's
guards to 'collect' (perfguard.on_n_plus_one; more with collect= /
perfguard_collect), so the code runs to its end while perfguard keeps each
finding, and tags the test's statements with perfguard='test' (their own
route entry "[test] <route>", left out of perfguard.findings unless
perfguard.include_test is on; route is the test's name outside tagged()
blocks, whose tags and request id stay).  At the end it calls
perfguard.check_collected(): when anything was found it raises
PerfguardError (SQLSTATE PF004) once, listing every finding with its
statement, count, parent and fix, followed by the queries the test ran.

no_n_plus_one(), no_duplicates() and max_queries() bracket a block with an
explicit scope (perfguard.begin_request / end_request) and set the matching
guard (perfguard.on_n_plus_one / on_duplicate / on_too_many_queries =
'error'); the statement that crosses the threshold fails in the database
with SQLSTATE PF001 / PF002 / PF003, and the block raises PerfguardError
(an AssertionError) with perfguard's message, the statement and the fix.
They take a Session or a Connection; on a failure the transaction is rolled
back (it is aborted anyway), and the settings are restored afterwards.  An
explicit scope lives on one server session: through a transaction pooler it
holds only inside one transaction (use them in tests on a direct
connection).
"""
import contextlib
import contextvars
import re
import secrets
import sys
from urllib.parse import quote

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

__all__ = ['instrument', 'tagged', 'format_comment', 'request_id_tags', 'no_n_plus_one',
           'no_duplicates', 'max_queries', 'collecting', 'perfguard_test', 'PerfguardError']

PERFGUARD_SQLSTATES = {'PF001', 'PF002', 'PF003'}
COLLECTED_SQLSTATE = 'PF004'

# collecting()'s guard names and their settings
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
MAX_LABEL_BYTES = 63

# the tags that name a request, in perfguard's order of precedence
ID_KEYS = ('traceparent', 'request_id')

_tags = contextvars.ContextVar('perfguard_tags', default=None)


class PerfguardError(AssertionError):
    """A perfguard guard fired (N+1, duplicate, too many queries) inside a guarded block."""

    def __init__(self, message, sqlstate):
        super().__init__(message)
        self.sqlstate = sqlstate


def _encode(value):
    return quote(str(value), safe='').replace("'", "\\'")


def format_comment(tags):
    """'/*k='v',...*/' for a dict of tags (None values left out); '' when empty."""
    pairs = ["%s='%s'" % (_encode(k), _encode(v))
             for k, v in sorted(tags.items()) if v is not None and v != '']
    return '/*%s*/' % ','.join(pairs) if pairs else ''


def otel_traceparent():
    """
    The W3C traceparent of the current OpenTelemetry span, or None.

    Optional: opentelemetry is never imported here.  An active span means
    the application has imported opentelemetry.trace already, so without it
    in sys.modules there is no span (and no import cost per request).
    """
    trace = sys.modules.get('opentelemetry.trace')
    if trace is None:
        return None
    try:
        context = trace.get_current_span().get_span_context()
        if not context.is_valid:
            return None
        return '00-%032x-%016x-%02x' % (context.trace_id, context.span_id,
                                        int(context.trace_flags))
    except Exception:  # an OpenTelemetry API we do not know: no traceparent
        return None


def request_id_tags():
    """
    The tag that names one request: {'traceparent': ...} of the current
    OpenTelemetry span when there is one, else {'request_id': <random hex>}.
    """
    traceparent = otel_traceparent()
    if traceparent:
        return {'traceparent': traceparent}
    return {'request_id': secrets.token_hex(16)}


@contextlib.contextmanager
def tagged(**tags):
    """
    Tag the statements run inside the block (nested blocks add to and
    override the outer tags).  The outermost block is a request: it adds the
    request's id (see request_id_tags()) unless the tags name one
    (traceparent or request_id, None for none).
    """
    merged = dict(_tags.get() or {})
    merged.update(tags)
    if not any(key in merged for key in ID_KEYS):
        merged.update(request_id_tags())
    token = _tags.set(merged)
    try:
        yield
    finally:
        _tags.reset(token)


@contextlib.contextmanager
def _without_request_id():
    """The block's statements carry the tags but not the request's id."""
    current = _tags.get()
    if not current or not any(current.get(key) for key in ID_KEYS):
        yield
        return
    token = _tags.set({k: (None if k in ID_KEYS else v) for k, v in current.items()})
    try:
        yield
    finally:
        _tags.reset(token)


def instrument(engine, **static_tags):
    """Append the sqlcommenter comment to every statement of engine; returns the listener."""
    percent_params = engine.dialect.paramstyle in ('format', 'pyformat')

    def before_cursor_execute(conn, cursor, statement, parameters, context, executemany):
        tags = dict(static_tags)
        tags.update(_tags.get() or {})
        comment = format_comment(tags)
        if not comment:
            return statement, parameters
        # The driver interpolates parameters unless the statement was sent
        # without any; then a '%' of the URL-encoding must be doubled.
        if percent_params and not (context is not None and context.no_parameters):
            comment = comment.replace('%', '%%')
        stripped = statement.rstrip()
        if stripped.endswith(';'):
            return '%s %s;' % (stripped[:-1].rstrip(), comment), parameters
        return '%s %s' % (stripped, comment), parameters

    event.listen(engine, 'before_cursor_execute', before_cursor_execute, retval=True)
    return before_cursor_execute


def _label(text_):
    data = str(text_).encode('utf-8')
    return str(text_) if len(data) <= MAX_LABEL_BYTES else \
        data[:MAX_LABEL_BYTES].decode('utf-8', 'ignore')


def _sqlstate(exc):
    orig = getattr(exc, 'orig', None)
    code = getattr(orig, 'pgcode', None)
    return code if code in PERFGUARD_SQLSTATES else None


def _describe(exc):
    diag = getattr(exc.orig, 'diag', None)
    if diag is None:
        return str(exc.orig)
    lines = ['%s %s' % (diag.sqlstate, diag.message_primary)]
    if diag.message_detail:
        lines.append(diag.message_detail)
    if diag.message_hint:
        lines.append('Suggestion: %s' % diag.message_hint)
    return '\n'.join(lines)


def _rollback(conn):
    if _is_session(conn):
        conn.rollback()
    else:
        trans = conn.get_transaction()
        if trans is not None:
            trans.rollback()


@contextlib.contextmanager
def _guard(conn, gucs, label):
    saved = {}
    # The guard's own statements carry no request id (begin_request() with
    # an id would first open the shared request of that id, a one-query
    # request of its own; inside the explicit scope, statements with an id
    # stay in it), and the settings are read with SHOW, a utility statement,
    # so that begin_request() is the only query of the scope it ends.
    with _without_request_id():
        for name in sorted(set(gucs) | set(GUARDS.values())):
            saved[name] = _show(conn, name)
        conn.execute(text('SELECT perfguard.begin_request(:l)'), {'l': _label(label)})
        # SET is a utility statement: perfguard does not count it as a query
        for name, value in sorted(gucs.items()):
            _set(conn, name, value)
    failure = None
    try:
        yield
    except DBAPIError as exc:
        if _sqlstate(exc) is None:
            raise
        failure = exc
        _rollback(conn)
    finally:
        with _without_request_id():
            # end_request() with the guards off: at 'collect' (a test's
            # guards, collecting()) it would report the test's findings here
            for name in sorted(GUARDS.values()):
                _set(conn, name, "'off'")
            conn.execute(text('SELECT * FROM perfguard.end_request()')).fetchall()
            for name, value in sorted(saved.items()):
                _set(conn, name, _quote_setting(value))
    if failure is not None:
        raise PerfguardError(_describe(failure), _sqlstate(failure)) from failure


def _show(conn, name):
    connection = conn.connection() if _is_session(conn) else conn
    return connection.exec_driver_sql('SHOW %s' % name).scalar()


def _set(conn, name, value):
    # exec_driver_sql without parameters: '%' needs no doubling; name and
    # value are ours (value quoted by _quote_setting or a constant)
    connection = conn.connection() if _is_session(conn) else conn
    connection.exec_driver_sql('SET %s = %s' % (name, value))


def _is_session(conn):
    return hasattr(conn, 'query') and hasattr(conn, 'expunge')


def _quote_setting(value):
    return "'%s'" % str(value).replace("'", "''")


def no_n_plus_one(conn, label='no_n_plus_one'):
    """Raise PerfguardError when a SELECT runs perfguard.n_plus_one_threshold times with different parameters."""
    return _guard(conn, {'perfguard.on_n_plus_one': "'error'"}, label)


def no_duplicates(conn, label='no_duplicates'):
    """Raise PerfguardError when one statement runs again with the same parameters."""
    return _guard(conn, {'perfguard.on_duplicate': "'error'"}, label)


def max_queries(conn, num, label='max_queries'):
    """Raise PerfguardError when the block runs more than num queries."""
    num = int(num)
    if num < 1:
        raise ValueError('max_queries needs a positive number of queries')
    return _guard(conn, {'perfguard.max_queries_per_request': str(num),
                         'perfguard.on_too_many_queries': "'error'"}, label)


# ---- a test suite's guard: collecting() and the pytest fixture perfguard_test

_TRAILING_COMMENT = re.compile(r"\s*/\*[^*]*'\*/\s*(;?)\s*$")


def _collect_settings(collect, max_queries):
    unknown = set(collect or ()) - set(GUARDS)
    if unknown:
        raise ValueError('collect: unknown guard(s) %s (known: %s)'
                         % (', '.join(sorted(unknown)), ', '.join(sorted(GUARDS))))
    gucs = {GUARDS[name]: 'collect' for name in collect or ()}
    if max_queries is not None:
        if int(max_queries) < 1:
            raise ValueError('max_queries must be a positive number of queries')
        gucs[MAX_QUERIES] = str(int(max_queries))
        gucs[GUARDS['too_many_queries']] = 'collect'
    return gucs


def _exec(conn, sql):
    connection = conn.connection() if _is_session(conn) else conn
    connection.exec_driver_sql(sql)


def _engine(conn):
    return conn.get_bind() if _is_session(conn) else conn.engine


def _check_collected(conn):
    """perfguard.check_collected(); its DBAPIError (PF004 when something was collected), or None."""
    began = not conn.in_transaction()
    try:
        if began:
            _exec(conn, CHECK_COLLECTED)
        else:
            # a savepoint: the test's transaction stays usable
            with conn.begin_nested():
                _exec(conn, CHECK_COLLECTED)
    except DBAPIError as exc:
        if began:
            _rollback(conn)     # the transaction the check began, aborted
        if getattr(exc.orig, 'pgcode', None) != COLLECTED_SQLSTATE:
            raise
        return exc
    return None


def _describe_collected(exc, queries):
    diag = getattr(exc.orig, 'diag', None)
    if diag is None:
        lines = [str(exc.orig)]
    else:
        lines = ['%s %s' % (diag.sqlstate, diag.message_primary)]
        lines += [part for part in (diag.message_detail, diag.message_hint) if part]
    shown = ['%d. %s' % (i, _TRAILING_COMMENT.sub(r'\1', sql))
             for i, sql in enumerate(queries[:MAX_SHOWN_QUERIES], start=1)]
    if len(queries) > MAX_SHOWN_QUERIES:
        shown.append('... (%d more)' % (len(queries) - MAX_SHOWN_QUERIES))
    lines.append('Captured queries were:')
    return '\n'.join(lines + shown)


@contextlib.contextmanager
def collecting(conn, label='test', collect=('n_plus_one',), max_queries=None, tag_test=True,
               test_failed=None):
    """
    The guard of one test, on a Session or a Connection (the one the test's
    statements run on: perfguard keeps findings per database session):

    - sets the guards named in collect ('n_plus_one', 'duplicate',
      'too_many_queries'; () for none) to 'collect', and with max_queries
      perfguard.max_queries_per_request too;
    - with tag_test, tags the block's statements perfguard='test' and, outside
      tagged() blocks, route=label (no request id: tagged() requests inside
      send theirs), so that the test's traffic stays out of the reports;
    - at the end restores the settings and calls perfguard.check_collected():
      when anything was found it raises PerfguardError (PF004) once, listing
      every finding and the queries of the block.  When the block raised (or
      test_failed, a callable, says the test failed already), the findings
      are forgotten: only the test's own failure is reported.

    Needs instrument() on the engine for the tags.  The settings are set and
    restored in the connection's transaction (a test that commits and whose
    last transaction is rolled back leaves them at 'collect' on that
    connection; harmless: the guards call nothing that reports).
    """
    __tracebackhide__ = True    # pytest: the failure, not this frame
    gucs = _collect_settings(collect, max_queries)
    token = None
    if tag_test:
        # first, so that the statements below belong to the test's request
        tags = dict(_tags.get() or {})
        tags.update(perfguard='test', route=_label(label))
        token = _tags.set(tags)
    saved = {}
    queries = []
    engine = None
    failure = None

    def capture(conn_, cursor, statement, parameters, context, executemany):
        # as sent (psycopg2 has the parameters in), one line per query
        sent = getattr(cursor, 'query', None)
        if isinstance(sent, bytes):
            sent = sent.decode('utf-8', 'replace')
        queries.append(re.sub(r'\s*\n\s*', ' ', sent or statement).strip())

    try:
        if gucs:
            # SHOW, SET and DO are utility statements: perfguard counts them as no query
            for name in sorted(set(gucs) | set(GUARDS.values())):
                saved[name] = _show(conn, name)
            _exec(conn, FORGET_COLLECTED)
            for name, value in sorted(gucs.items()):
                _set(conn, name, _quote_setting(value))
            engine = _engine(conn)
            event.listen(engine, 'after_cursor_execute', capture)
        try:
            yield
            if test_failed is not None and test_failed():
                raise _TestFailed()
        except BaseException as exc:
            if saved:
                try:
                    for name, value in sorted(saved.items()):
                        _set(conn, name, _quote_setting(value))
                    _exec(conn, FORGET_COLLECTED)
                except Exception:  # noqa: BLE001 - an aborted transaction: the block's error matters
                    pass
                saved = {}
            if isinstance(exc, _TestFailed):
                return
            raise
        if saved:
            event.remove(engine, 'after_cursor_execute', capture)
            engine = None
            # checked with the test's settings (the message names its
            # max_queries_per_request), restored after
            try:
                failure = _check_collected(conn)
            finally:
                for name, value in sorted(saved.items()):
                    _set(conn, name, _quote_setting(value))
    finally:
        if engine is not None:
            event.remove(engine, 'after_cursor_execute', capture)
        if token is not None:
            _tags.reset(token)
    if failure is not None:
        raise PerfguardError(_describe_collected(failure, queries), COLLECTED_SQLSTATE)


class _TestFailed(Exception):
    """collecting(test_failed=...): the test failed already."""


def perfguard_test(request):
    """
    A pytest fixture, as a plain generator function (this module does not
    need pytest).  In conftest.py:

        from perfguard_sqlalchemy import perfguard_test
        perfguard = pytest.fixture(autouse=True)(perfguard_test)

    Each test runs inside collecting(), on the Session or Connection of the
    fixture named by perfguard_bind (default 'session'), labelled with the
    test's name; an N+1 (and what perfguard_collect names) fails the test at
    its end with one PerfguardError listing every finding (pytest reports it
    as an error at teardown), unless the test failed by itself.  The test class, else the module, may set
    perfguard_bind, perfguard_collect (default ('n_plus_one',)),
    perfguard_max_queries (default None) and perfguard_tag_test (default
    True).
    """
    __tracebackhide__ = True    # pytest: the failure, not this frame

    def setting(name, default):
        for holder in (getattr(request, 'cls', None), getattr(request, 'module', None)):
            if holder is not None and hasattr(holder, name):
                return getattr(holder, name)
        return default

    collect = setting('perfguard_collect', ('n_plus_one',))
    max_queries_ = setting('perfguard_max_queries', None)
    tag_test = setting('perfguard_tag_test', True)
    if not collect and max_queries_ is None and not tag_test:
        yield
        return
    conn = request.getfixturevalue(setting('perfguard_bind', 'session'))
    label = request.node.nodeid.split('::', 1)[-1]
    # pytest counts a failed test before its fixtures are torn down
    failed_before = getattr(request.session, 'testsfailed', 0)
    with collecting(conn, label, collect=collect, max_queries=max_queries_, tag_test=tag_test,
                    test_failed=lambda: getattr(request.session, 'testsfailed', 0) > failed_before):
        yield
