"""
sqlcommenter comments, as perfguard reads them.

A comment is appended at the end of the statement:

    SELECT ... /*controller='book-list',framework='django',route='books%2F'*/

Keys are sorted; keys and values are URL-encoded (urllib.parse.quote with no
safe characters, so '/' becomes %2F and a quote becomes %27), and each value
is wrapped in single quotes, as the sqlcommenter specification says.
Meta-characters left after encoding (none with quote(safe='')) would be
backslash-escaped.

Every request also carries its id, so that perfguard keeps it one request
across backends (behind a transaction pooler) and never merges two requests
on one persistent connection: request_id_tags() gives the traceparent of the
current OpenTelemetry span when there is one, else a fresh random
request_id.
"""
import secrets
import sys
from urllib.parse import quote


def _encode(text):
    return quote(str(text), safe='').replace("'", "\\'")


def format_comment(tags):
    """'/*k='v',...*/' for a dict of tags; None values are left out; '' when empty."""
    pairs = [
        "%s='%s'" % (_encode(key), _encode(value))
        for key, value in sorted(tags.items())
        if value is not None and value != ''
    ]
    if not pairs:
        return ''
    return '/*%s*/' % ','.join(pairs)


def append_comment(sql, comment, has_params):
    """
    sql with the comment appended (before a trailing semicolon).

    When the driver interpolates parameters (params is not None, even an
    empty sequence) a '%' of the URL-encoding must be doubled for psycopg2.
    """
    if not comment:
        return sql
    if has_params:
        comment = comment.replace('%', '%%')
    stripped = sql.rstrip()
    if stripped.endswith(';'):
        return '%s %s;' % (stripped[:-1].rstrip(), comment)
    return '%s %s' % (stripped, comment)


def has_comment(sql):
    """Does sql already end with a sqlcommenter comment (...'*/)?"""
    return sql.rstrip().rstrip(';').rstrip().endswith("'*/")


class CommentWrapper:
    """
    A connection.execute_wrapper() that appends a comment with its tags to
    every statement.

    Several on one connection (PerfguardTestMixin's perfguard='test' around
    the middleware's request tags) make one comment, since perfguard reads
    only the last one: the innermost writes the tags of all of them, inner
    ones winning, and the others pass the statement on.  A statement that
    already ends with a sqlcommenter comment (perfguard_django's own checks,
    /*perfguard='ignore'*/) keeps it.
    """

    def __init__(self, tags):
        self.tags = dict(tags)
        self.comment = format_comment(tags)

    def __call__(self, execute, sql, params, many, context):
        comment = self.comment
        wrappers = getattr((context or {}).get('connection'), 'execute_wrappers', ())
        if len(wrappers) > 1:
            mine = [w for w in wrappers if isinstance(w, CommentWrapper)]
            if len(mine) > 1:
                if mine[-1] is not self:
                    return execute(sql, params, many, context)
                tags = {}
                for wrapper in mine:
                    tags.update(wrapper.tags)
                comment = format_comment(tags)
        if has_comment(sql):
            return execute(sql, params, many, context)
        return execute(append_comment(sql, comment, params is not None),
                       params, many, context)


def new_request_id():
    """A fresh random request id: 32 hex digits (128 bits)."""
    return secrets.token_hex(16)


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
    perfguard reads the trace id of traceparent first, then request_id.
    """
    traceparent = otel_traceparent()
    if traceparent:
        return {'traceparent': traceparent}
    return {'request_id': new_request_id()}
