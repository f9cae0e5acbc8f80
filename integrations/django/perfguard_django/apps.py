from django.apps import AppConfig


class PerfguardConfig(AppConfig):
    name = 'perfguard_django'
    verbose_name = 'perfguard'
