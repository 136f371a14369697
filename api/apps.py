from django.apps import AppConfig


class ApiConfig(AppConfig):
    name = "api"
    label = "api"
    verbose_name = "API"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from api import selectors
        from newsletter.models import MailingList

        for signal in (post_save, post_delete):
            signal.connect(selectors.lists_cache_clear, sender=MailingList,
                           dispatch_uid=f"api.lists_cache_clear.{signal}")
