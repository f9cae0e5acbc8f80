"""
Settings for the perfguard Django example.

Everything that differs between machines comes from the environment, with
the libpq variable names: PGHOST (a host name or a Unix socket directory),
PGPORT, PGDATABASE, PGUSER, PGPASSWORD.

PERFGUARD_SCOPE chooses how blog.middleware.PerfguardMiddleware tells
perfguard where one HTTP request starts and ends:

  explicit  SELECT perfguard.begin_request(route) before the view and
            SELECT * FROM perfguard.end_request() after it, plus the
            sqlcommenter tags on every statement (default; the most robust)
  comment   sqlcommenter tags only: a statement whose tags differ from the
            previous one starts a new scope (no extra round trips)
  off       no tags, no scopes (plain Django)
"""
import getpass
import os

BASE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

SECRET_KEY = os.environ.get('DJANGO_SECRET_KEY', 'perfguard-example-not-secret')
DEBUG = os.environ.get('DJANGO_DEBUG', '0') == '1'
ALLOWED_HOSTS = ['localhost', '127.0.0.1', 'testserver']

INSTALLED_APPS = [
    'blog',
]

MIDDLEWARE = [
    'blog.middleware.PerfguardMiddleware',
]

ROOT_URLCONF = 'project.urls'
WSGI_APPLICATION = 'project.wsgi.application'

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': os.environ.get('PGDATABASE', 'perfguard_django'),
        'USER': os.environ.get('PGUSER', getpass.getuser()),
        'PASSWORD': os.environ.get('PGPASSWORD', ''),
        'HOST': os.environ.get('PGHOST', ''),
        'PORT': os.environ.get('PGPORT', ''),
        # Keep the connection between requests: a session setting such as
        # perfguard.on_n_plus_one then survives from one request to the next.
        'CONN_MAX_AGE': None,
    }
}

PERFGUARD_SCOPE = os.environ.get('PERFGUARD_SCOPE', 'explicit')

DEFAULT_AUTO_FIELD = 'django.db.models.BigAutoField'
USE_TZ = True
TIME_ZONE = 'UTC'
LANGUAGE_CODE = 'en-us'
USE_I18N = False
