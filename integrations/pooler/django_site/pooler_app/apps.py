from django.apps import AppConfig


class PoolerAppConfig(AppConfig):
    name = 'pooler_app'
