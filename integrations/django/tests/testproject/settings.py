"""Settings of the perfguard_django test project (a throwaway cluster from run_e2e.sh)."""
import logging
import os

SECRET_KEY = 'perfguard-django-tests-not-secret'
DEBUG = False
# No logging setup: the default 'mail_admins' handler would render an error
# report (evaluating querysets) inside the aborted transaction.
LOGGING_CONFIG = None
logging.getLogger('django.request').addHandler(logging.NullHandler())
ALLOWED_HOSTS = ['testserver', 'localhost']
USE_TZ = True
ROOT_URLCONF = 'testproject.urls'
DEFAULT_AUTO_FIELD = 'django.db.models.AutoField'

INSTALLED_APPS = [
    'django.contrib.contenttypes',
    'perfguard_django',
    'library',
]

MIDDLEWARE = [
    'perfguard_django.middleware.PerfguardMiddleware',
]

DATABASES = {
    'default': {
        'ENGINE': 'django.db.backends.postgresql',
        'NAME': os.environ.get('PGDATABASE', 'postgres'),
        'HOST': os.environ.get('PGHOST', ''),
        'PORT': os.environ.get('PGPORT', ''),
        'USER': os.environ.get('PGUSER', ''),
    }
}

# Tags only; the tests switch explicit scopes on with override_settings.
PERFGUARD_EXPLICIT_SCOPES = False
