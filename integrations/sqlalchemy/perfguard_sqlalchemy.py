"""
perfguard_sqlalchemy: SQLAlchemy (1.4+) integration of the perfguard
PostgreSQL extension.

    from perfguard_sqlalchemy import instrument, tagged, no_n_plus_one

    instrument(engine, framework='flask')      # once, at start-up
    with tagged(route='/posts', controller='posts.index'):
        ...                                     # statements carry the tags
    with no_n_plus_one(session):                # in a test
        ...                                     # PerfguardError on an N+1

instrument() adds a before_cursor_execute listener that appends a
sqlcommenter comment to every statement of the engine:

    SELECT ... /*controller='posts.index',framework='flask',route='%2Fposts'*/

keys sorted, keys and values URL-encoded, values in single quotes.  The tags
are the engine's static tags plus those of the innermost tagged() block
(a contextvar, so threads and asyncio tasks keep theirs apart).  perfguard
starts a new request scope when the tags change and labels it with route.

no_n_plus_one(), no_duplicates() and max_queries() bracket a block with an
explicit scope (perfguard.begin_request / end_request) and set the matching
guard (perfguard.on_n_plus_one / on_duplicate / on_too_many_queries =
'error'); the statement that crosses the threshold fails in the database
with SQLSTATE PF001 / PF002 / PF003, and the block raises PerfguardError
(an AssertionError) with perfguard's message, the statement and the fix.
They take a Session or a Connection; on a failure the transaction is rolled
back (it is aborted anyway), and the settings are restored afterwards.
"""
import contextlib
import contextvars
from urllib.parse import quote

from sqlalchemy import event, text
from sqlalchemy.exc import DBAPIError

__all__ = ['instrument', 'tagged', 'format_comment', 'no_n_plus_one',
           'no_duplicates', 'max_queries', 'PerfguardError']

PERFGUARD_SQLSTATES = {'PF001', 'PF002', 'PF003'}
MAX_LABEL_BYTES = 63

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


@contextlib.contextmanager
def tagged(**tags):
    """Tag the statements run inside the block (nested blocks add to and override the outer tags)."""
    merged = dict(_tags.get() or {})
    merged.update(tags)
    token = _tags.set(merged)
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
    for name in sorted(gucs):
        saved[name] = conn.execute(text('SELECT current_setting(:n)'), {'n': name}).scalar()
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
        for name, value in sorted(saved.items()):
            _set(conn, name, _quote_setting(value))
        conn.execute(text('SELECT * FROM perfguard.end_request()')).fetchall()
    if failure is not None:
        raise PerfguardError(_describe(failure), _sqlstate(failure)) from failure


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
