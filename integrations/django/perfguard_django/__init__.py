"""
perfguard_django: Django integration of the perfguard PostgreSQL extension.

- perfguard_django.middleware.PerfguardMiddleware tags every SQL statement of a
  request with a sqlcommenter comment (route, controller, framework) and can
  bracket the request with perfguard.begin_request() / end_request().
- perfguard_django.testing.PerfguardTestMixin adds assertNoNPlusOne(),
  assertNoDuplicates() and assertMaxQueries() to Django test cases; they
  raise PerfguardNotReady, saying what to do, when the database lacks the
  extension or the server does not preload it.
- migrations/0001_create_extension runs CREATE EXTENSION IF NOT EXISTS
  perfguard (as a superuser; otherwise it warns and skips).

See docs/integrations.md in the perfguard repository.
"""
