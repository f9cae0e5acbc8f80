"""
perfguard_django: Django integration of the perfguard PostgreSQL extension.

- perfguard_django.middleware.PerfguardMiddleware tags every SQL statement of a
  request with a sqlcommenter comment (route, controller, framework) and can
  bracket the request with perfguard.begin_request() / end_request().
- perfguard_django.testing.PerfguardTestMixin adds assertNoNPlusOne(),
  assertNoDuplicates() and assertMaxQueries() to Django test cases.

See docs/integrations.md in the perfguard repository.
"""
