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
import secrets
import sys
from urllib.parse import quote

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

__all__ = ['instrument', 'tagged', 'format_comment', 'request_id_tags', 'no_n_plus_one',
           'no_duplicates', 'max_queries', 'PerfguardError']

PERFGUARD_SQLSTATES = {'PF001', 'PF002', 'PF003'}
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
        for name in sorted(gucs):
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
            for name, value in sorted(saved.items()):
                _set(conn, name, _quote_setting(value))
            conn.execute(text('SELECT * FROM perfguard.end_request()')).fetchall()
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
