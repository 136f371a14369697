from django.apps import AppConfig


class ConfigAppConfig(AppConfig):
    """Project-wide pieces: health endpoint, local-run commands."""

    name = "config"
    label = "project"
    verbose_name = "Service"
