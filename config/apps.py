from django.apps import AppConfig
from django.contrib.admin.apps import AdminConfig as DjangoAdminConfig


class ConfigAppConfig(AppConfig):
    """Project-wide pieces: the health endpoint and the local-run commands."""

    name = "config"
    label = "project"
    verbose_name = "Service"

    def ready(self) -> None:
        from config import checks  # noqa: F401 - registers the secret key check


class AdminConfig(DjangoAdminConfig):
    """The admin, on a site whose login asks for a TOTP code (config.admin_site)."""

    default_site = "config.admin_site.AdminSite"
