"""
CREATE EXTENSION IF NOT EXISTS perfguard, in every PostgreSQL database that
migrates perfguard_django (so also in the test databases Django creates).

perfguard's extension needs a superuser (perfguard.control: superuser =
true).  Where the role may not create it, or the server lacks perfguard,
the migration does nothing but warn (PerfguardMigrationWarning, shown by
manage.py migrate) and is still recorded: run CREATE EXTENSION perfguard as
a superuser instead.  Other database backends are skipped silently.  The
reverse migration leaves the extension in place (DROP EXTENSION would drop
the views that other tools may use).
"""
from django.db import DatabaseError, migrations, transaction

from perfguard_django.readiness import HOW_TO_PRELOAD, warn


def create_extension(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != 'postgresql':
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_catalog.pg_extension WHERE extname = 'perfguard'")
        if cursor.fetchone():
            return
        cursor.execute('SELECT current_user, current_database(), '
                       '(SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user), '
                       "(SELECT bool_or(superuser) FROM pg_catalog.pg_available_extension_versions "
                       " WHERE name = 'perfguard')")
        user, database, is_superuser, needs_superuser = cursor.fetchone()
    if needs_superuser is None:
        warn('CREATE EXTENSION perfguard skipped in database "%s": the PostgreSQL server has no '
             'perfguard extension. Install it on the server (make install, or the '
             'postgresql-15-perfguard package), then run CREATE EXTENSION perfguard as a superuser. %s'
             % (database, HOW_TO_PRELOAD))
        return
    if needs_superuser and not is_superuser:
        warn('CREATE EXTENSION perfguard skipped in database "%s": the role "%s" is not a superuser, '
             'and perfguard must be created by one. As a superuser, run CREATE EXTENSION perfguard '
             'in this database (and in template1, from which Django creates test databases).'
             % (database, user))
        return
    try:
        with transaction.atomic(using=connection.alias):
            with connection.cursor() as cursor:
                cursor.execute('CREATE EXTENSION IF NOT EXISTS perfguard')
    except DatabaseError as exc:
        warn('CREATE EXTENSION perfguard failed in database "%s" as role "%s": %s'
             % (database, user, str(exc).strip()))


class Migration(migrations.Migration):

    dependencies = []

    operations = [
        migrations.RunPython(create_extension, migrations.RunPython.noop, elidable=False),
    ]
