"""
Settings of the Django 3.2 site of the pooler end-to-end test: the
perfguard_django middleware with its defaults, CONN_MAX_AGE = 60 (one
persistent connection per thread), autocommit (Django's default).  The
database is PFGT_HOST / PFGT_PORT: pgbouncer's TCP port, or the cluster's
socket directory.
"""
import logging
import os

SECRET_KEY = 'perfguard-pooler-tests-not-secret'
DEBUG = False
LOGGING_CONFIG = None
logging.getLogger('django.request').addHandler(logging.NullHandler())
ALLOWED_HOSTS = ['testserver', 'localhost']
USE_TZ = True
TIME_ZONE = 'UTC'
ROOT_URLCONF = 'pooler_site.urls'
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

INSTALLED_APPS = [
    'perfguard_django',
    'pooler_app',
]

# the middleware defaults: no PERFGUARD_* setting
MIDDLEWARE = [
    'perfguard_django.middleware.PerfguardMiddleware',
]

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': os.environ.get('PGDATABASE', 'postgres'),
        'HOST': os.environ.get('PFGT_HOST', os.environ.get('PGHOST', '')),
        'PORT': os.environ.get('PFGT_PORT', os.environ.get('PGPORT', '')),
        'USER': os.environ.get('PGUSER', ''),
        'CONN_MAX_AGE': 60,
    }
}
