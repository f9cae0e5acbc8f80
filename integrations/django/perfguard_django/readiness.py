"""
Is the database ready for perfguard?  Clear messages instead of
'schema "perfguard" does not exist'.

Used by the migration (0001_create_extension) and by PerfguardTestMixin.
"""
import warnings

from django.core.exceptions import ImproperlyConfigured
from django.db import DatabaseError, transaction

PRELOAD_MESSAGE = 'shared_preload_libraries'

# perfguard records these checks but never reports them as findings
IGNORE_TAG = "/*perfguard='ignore'*/"

# set on a connection object: the DB-API connection that passed the preload check
PRELOAD_CHECKED_ATTR = 'perfguard_preload_checked'

HOW_TO_PRELOAD = (
    "Add perfguard to shared_preload_libraries in postgresql.conf "
    "(shared_preload_libraries = 'perfguard', appended to any existing list) "
    "and restart PostgreSQL.")

HOW_TO_CREATE = (
    "Add 'perfguard_django' to INSTALLED_APPS: its migration runs CREATE EXTENSION perfguard "
    "(the database role must be a superuser); or, as a superuser, run "
    "CREATE EXTENSION perfguard in the database and in template1, from which Django creates "
    "test databases.")


class PerfguardMigrationWarning(RuntimeWarning):
    """The migration could not create the extension (shown by manage.py migrate)."""


class PerfguardNotReady(ImproperlyConfigured):
    """The database lacks the perfguard extension, or the server does not preload it."""


def _database_name(connection):
    try:
        with connection.cursor() as cursor:
            cursor.execute('SELECT current_database()')
            return cursor.fetchone()[0]
    except Exception:  # noqa: BLE001 - only for the message
        return connection.settings_dict.get('NAME')


def extension_installed(connection):
    """True when CREATE EXTENSION perfguard was run in the connection's database."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'perfguard' "
                       + IGNORE_TAG)
        return cursor.fetchone() is not None


def check_extension(connection):
    """Raise PerfguardNotReady, saying what to do, when the extension is missing."""
    if not extension_installed(connection):
        raise PerfguardNotReady(
            'perfguard: the extension is not installed in database "%s". %s %s'
            % (_database_name(connection), HOW_TO_CREATE, HOW_TO_PRELOAD))


def not_preloaded_error(exc):
    """PerfguardNotReady for perfguard's "must be loaded via shared_preload_libraries" error, else None."""
    if PRELOAD_MESSAGE not in str(exc):
        return None
    return PerfguardNotReady(
        'perfguard: the server does not preload the perfguard library, so it records nothing '
        'and its guards cannot run. %s (%s)' % (HOW_TO_PRELOAD, str(exc).strip().splitlines()[0]))


def warn(message):
    warnings.warn('perfguard: %s' % message, PerfguardMigrationWarning, stacklevel=2)


def _probe_preload(connection):
    # every perfguard view raises "must be loaded via shared_preload_libraries"
    with connection.cursor() as cursor:
        cursor.execute('SELECT version FROM perfguard.info ' + IGNORE_TAG)
        cursor.fetchall()


def check_ready(connection):
    """
    Raise PerfguardNotReady, saying what to do, when the connection's database
    lacks the extension or the server does not preload the library.  The
    preload check runs once per database connection (in a savepoint inside a
    transaction, so a failure leaves the transaction usable).
    """
    check_extension(connection)
    raw = connection.connection
    if raw is not None and getattr(connection, PRELOAD_CHECKED_ATTR, None) is raw:
        return
    try:
        if connection.in_atomic_block:
            with transaction.atomic(using=connection.alias):
                _probe_preload(connection)
        else:
            _probe_preload(connection)
    except DatabaseError as exc:
        not_ready = not_preloaded_error(exc)
        if not_ready is not None:
            raise not_ready from exc
        raise
    setattr(connection, PRELOAD_CHECKED_ATTR, connection.connection)
