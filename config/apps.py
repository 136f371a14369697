from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    """Project-wide pieces: the health endpoint and the local-run commands."""

    name = "config"
    label = "project"
    verbose_name = "Service"
