"""
perfguard request scopes for Django.

PerfguardMiddleware does two things for every request:

1. It appends a sqlcommenter comment to every SQL statement the request
   sends through the default connection, e.g.

       SELECT ... FROM "blog_essay" /*controller='bad-forward-fk',framework='django',route='bad/forward-fk/'*/

   Keys are sorted, keys and values are URL-encoded with urllib.parse.quote
   (as the sqlcommenter reference implementation does) and each value is
   wrapped in single quotes.  perfguard reads the comment at the end of the
   statement: a statement whose tags differ from the previous one starts a
   new request scope, and the scope's label, the `route` column of the
   perfguard views, is the route pattern.

2. With settings.PERFGUARD_SCOPE = 'explicit' (the default) it also brackets
   the view with SELECT perfguard.begin_request(route) and
   SELECT * FROM perfguard.end_request(), so two consecutive requests to the
   same route on the same connection are never merged, whatever the timing.
   The end_request() summary is copied into X-Perfguard-* response headers.
   PERFGUARD_SCOPE = 'comment' sends the tags only; 'off' does nothing.

The setting is read per request, so override_settings() works in tests.
"""
from urllib.parse import quote

from psycopg2.extensions import TRANSACTION_STATUS_INERROR

from django.conf import settings
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.urls import Resolver404, resolve

FRAMEWORK = 'django'


def sqlcommenter_comment(tags):
    """The comment for a dict of tags: ' /*k='v',...*/', keys sorted, None values left out."""
    pairs = ','.join(
        "%s='%s'" % (quote(str(key)), quote(str(value)))
        for key, value in sorted(tags.items())
        if value is not None
    )
    return ' /*%s*/' % pairs if pairs else ''


class QueryTagger:
    """execute_wrapper that appends a fixed sqlcommenter comment to each statement."""

    def __init__(self, tags):
        self.comment = sqlcommenter_comment(tags)
        # URL-encoding produces '%'; when the driver interpolates parameters
        # (params is not None, even an empty tuple) '%' must be doubled.
        self.comment_for_params = self.comment.replace('%', '%%')

    def __call__(self, execute, sql, params, many, context):
        comment = self.comment if params is None else self.comment_for_params
        return execute(sql + comment, params, many, context)


def request_tags(request):
    """route / controller / framework tags for a request (route None when it does not resolve)."""
    try:
        match = resolve(request.path_info)
    except Resolver404:
        return {'framework': FRAMEWORK, 'route': None, 'controller': None}
    return {
        'framework': FRAMEWORK,
        'route': match.route,
        'controller': match.view_name or None,
    }


class PerfguardMiddleware:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        mode = getattr(settings, 'PERFGUARD_SCOPE', 'explicit')
        if mode == 'off':
            return self.get_response(request)
        if mode not in ('explicit', 'comment'):
            raise ValueError("PERFGUARD_SCOPE must be 'explicit', 'comment' or 'off', not %r" % (mode,))

        tags = request_tags(request)
        connection = connections[DEFAULT_DB_ALIAS]
        with connection.execute_wrapper(QueryTagger(tags)):
            if mode == 'comment':
                return self.get_response(request)

            label = tags['route'] if tags['route'] is not None else request.path_info
            with connection.cursor() as cursor:
                cursor.execute('SELECT perfguard.begin_request(%s)', [label])
            try:
                response = self.get_response(request)
            except BaseException:
                # Close the scope but let the view's exception win.
                try:
                    self._end_request(connection)
                except DatabaseError:
                    pass
                raise
            summary = self._end_request(connection)
            if summary:
                for key in ('queries', 'n_plus_one', 'duplicates'):
                    if key in summary:
                        response['X-Perfguard-%s' % key.replace('_', '-').title()] = str(summary[key])
            return response

    @staticmethod
    def _end_request(connection):
        """Close the explicit scope; returns end_request()'s row as a dict, or None."""
        # Inside a broken atomic block nothing can run until the rollback;
        # the next begin_request() closes this scope anyway.
        if connection.in_atomic_block and (
                connection.needs_rollback
                or connection.connection.get_transaction_status() == TRANSACTION_STATUS_INERROR):
            return None
        with connection.cursor() as cursor:
            cursor.execute('SELECT * FROM perfguard.end_request()')
            row = cursor.fetchone()
            names = [col[0] for col in cursor.description]
        return dict(zip(names, row)) if row is not None else None
