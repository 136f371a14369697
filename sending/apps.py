from django.apps import AppConfig


class SendingConfig(AppConfig):
    name = "sending"

    def ready(self) -> None:
        from sending import bounce_receivers  # noqa: F401 - connects the bounce receiver
