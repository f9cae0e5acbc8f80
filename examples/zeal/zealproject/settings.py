"""
Settings of the django-zeal port (examples/zeal): Django 3.2 against the
throwaway PostgreSQL cluster of run_e2e.sh (libpq environment: PGHOST,
PGPORT, PGUSER, PGDATABASE).

Two aliases reach the same database on different backends:
  default  the application: every ported case runs here, each on a fresh
           connection whose application_name is the case's label
  setup    the fixtures (TRUNCATE, factories), so that no fixture statement
           lands in a case's request
"""
import getpass
import os


def _db(application_name):
    return {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': os.environ.get('PGDATABASE', 'zeal'),
        'USER': os.environ.get('PGUSER', getpass.getuser()),
        'PASSWORD': os.environ.get('PGPASSWORD', ''),
        'HOST': os.environ.get('PGHOST', ''),
        'PORT': os.environ.get('PGPORT', ''),
        # kept across the test client's requests (as in production)
        'CONN_MAX_AGE': None,
        'OPTIONS': {'application_name': application_name},
    }


SECRET_KEY = 'perfguard-zeal-port-not-secret'
DEBUG = False
ALLOWED_HOSTS = ['testserver']
INSTALLED_APPS = [
    'django.contrib.contenttypes',
    'social',
]
# No middleware: the harness tags the requests itself (sqlcommenter route and
# traceparent), or leaves them untagged.
MIDDLEWARE = []
ROOT_URLCONF = 'zealproject.urls'
DATABASES = {
    'default': _db('zeal-app'),
    'setup': _db('zeal-setup'),
}
DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
USE_TZ = True
TIME_ZONE = 'UTC'
USE_I18N = False
