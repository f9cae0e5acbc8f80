"""
PerfguardMiddleware: one perfguard request scope per Django request.

For every request it appends a sqlcommenter comment to each statement sent
through the configured connections (settings.PERFGUARD_DATABASES, default
['default']; non-PostgreSQL connections are skipped):

    route       the URL pattern (ResolverMatch.route, e.g. 'books/<int:pk>/'),
                or the path when the URL does not resolve
    controller  the view name (ResolverMatch.view_name, else the view's
                dotted path)
    framework   'django'
    request_id  a fresh random id (32 hex digits) per request, or instead
    traceparent the current OpenTelemetry span's, when opentelemetry is in
                use and a span is active when the request starts

perfguard labels the request with the route and identifies it by the trace
id of traceparent, else by request_id: whichever backend runs a statement of
the request (behind a transaction pooler such as pgbouncer they change from
one statement to the next), it counts toward that one request, and two
requests are never merged, even back to back on one persistent connection
(CONN_MAX_AGE).  settings.PERFGUARD_REQUEST_ID = False leaves the id out
(then the route tags and request_gap delimit requests, per backend).

With settings.PERFGUARD_EXPLICIT_SCOPES = True it also brackets the request
with SELECT perfguard.begin_request(route) and perfguard.end_request() on the
session, and puts the summary of end_request() in the X-Perfguard-Queries,
X-Perfguard-N-Plus-One and X-Perfguard-Duplicates response headers.  An
explicit scope lives on one server session: through a transaction pooler it
holds only inside one transaction, and begin_request() runs in one of its
own (ATOMIC_REQUESTS opens the view's transaction after it), so use it on
direct connections only; the request id works everywhere.  When a
PerfguardTestMixin assertion already holds an explicit scope on the
connection, the middleware leaves it alone; while a PerfguardTestMixin test
collects findings, it closes its scope without reporting them (the test
does, at its end).

Settings are read per request, so override_settings() works in tests.
"""
from contextlib import ExitStack

from django.conf import settings
from django.db import DatabaseError, connections
from django.urls import Resolver404, resolve

from .sqlcommenter import CommentWrapper, request_id_tags

FRAMEWORK = 'django'

# Set on a connection object while a test assertion owns its explicit scope.
SCOPE_OWNER_ATTR = 'perfguard_scope_owner'

# Set on a connection object while a PerfguardTestMixin test collects
# findings: {guard setting: 'collect'}.  end_request() would report (and
# forget) them; the middleware ends its scope with those guards off.
COLLECTING_ATTR = 'perfguard_collecting'

# perfguard keeps route labels of up to 63 bytes
MAX_LABEL_BYTES = 63


def request_tags(request):
    """The sqlcommenter tags of a request."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return {'framework': FRAMEWORK, 'route': request.path_info, 'controller': None}
    controller = match.view_name or getattr(match, '_func_path', None)
    return {'framework': FRAMEWORK, 'route': match.route or request.path_info,
            'controller': controller}


def perfguard_label(text):
    """A scope label perfguard accepts: at most 63 bytes of UTF-8, cut at a character boundary."""
    data = str(text).encode('utf-8')
    if len(data) <= MAX_LABEL_BYTES:
        return str(text)
    return data[:MAX_LABEL_BYTES].decode('utf-8', 'ignore')


def connection_usable(connection):
    """False inside a broken transaction, where nothing but a rollback can run."""
    if connection.connection is None:
        return True
    if connection.in_atomic_block and connection.needs_rollback:
        return False
    try:
        from psycopg2.extensions import TRANSACTION_STATUS_INERROR
    except ImportError:
        return True
    return connection.connection.get_transaction_status() != TRANSACTION_STATUS_INERROR


def _postgres_connections():
    for alias in getattr(settings, 'PERFGUARD_DATABASES', ['default']):
        connection = connections[alias]
        if connection.vendor == 'postgresql':
            yield connection


class PerfguardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if not getattr(settings, 'PERFGUARD_ENABLED', True):
            return self.get_response(request)
        tags = request_tags(request)
        id_tags = request_id_tags() if getattr(settings, 'PERFGUARD_REQUEST_ID', True) else {}
        explicit = getattr(settings, 'PERFGUARD_EXPLICIT_SCOPES', False)
        with ExitStack() as stack:
            bracketed = []
            for connection in _postgres_connections():
                if explicit and not getattr(connection, SCOPE_OWNER_ATTR, None):
                    # begin_request() carries the route tags but not the id:
                    # a statement with an id would open the shared request
                    # of that id (one query of its own) before
                    # begin_request() runs; with route tags only, perfguard
                    # drops the one-statement scope it opened.
                    with connection.execute_wrapper(CommentWrapper(tags)):
                        with connection.cursor() as cursor:
                            cursor.execute('SELECT perfguard.begin_request(%s)',
                                           [perfguard_label(tags['route'])])
                    bracketed.append(connection)
                stack.enter_context(connection.execute_wrapper(
                    CommentWrapper(dict(tags, **id_tags))))
            try:
                response = self.get_response(request)
            except BaseException:
                for connection in bracketed:
                    self.end_request(connection)
                raise
            for connection in bracketed:
                summary = self.end_request(connection)
                if summary and connection.alias == bracketed[0].alias:
                    response['X-Perfguard-Queries'] = str(summary['queries'])
                    response['X-Perfguard-N-Plus-One'] = str(summary['n_plus_one'])
                    response['X-Perfguard-Duplicates'] = str(summary['duplicates'])
            return response

    @staticmethod
    def end_request(connection):
        """Close the explicit scope; end_request()'s row as a dict, or None."""
        if not connection_usable(connection):
            # the next begin_request() closes the scope
            return None
        # a test that collects findings reports them at its end: with guards
        # at 'collect', end_request() would fail here, listing them
        collecting = getattr(connection, COLLECTING_ATTR, None) or {}
        try:
            with connection.cursor() as cursor:
                for name in sorted(collecting):
                    cursor.execute("SET %s = 'off'" % name)
                cursor.execute('SELECT queries, n_plus_one, duplicates FROM perfguard.end_request()')
                row = cursor.fetchone()
                for name, value in sorted(collecting.items()):
                    cursor.execute('SET %s = %%s' % name, [value])
        except DatabaseError:
            return None
        return {'queries': row[0], 'n_plus_one': row[1], 'duplicates': row[2]}
