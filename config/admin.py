"""Third-party admins whose actions carry no permission of their own, guarded here.

Upstream, django-celery-beat's "Run selected tasks" and enable/disable actions, and
django-axes' clean-up of expired attempts, are offered to anyone who may only view
those rows. Here they need the change (or delete) permission.
"""

from axes.admin import AccessAttemptAdmin
from axes.models import AccessAttempt
from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask


def _guarded(base, names: tuple[str, ...], permission: str):
    class Guarded(base):
        def get_actions(self, request):
            actions = super().get_actions(request)
            if not getattr(self, f"has_{permission}_permission")(request):
                for name in names:
                    actions.pop(name, None)
            return actions

    Guarded.__name__ = f"Guarded{base.__name__}"
    return Guarded


for model, model_admin, names, permission in (
    (PeriodicTask, PeriodicTaskAdmin,
     ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks"), "change"),
    (AccessAttempt, AccessAttemptAdmin, ("cleanup_expired_attempts",), "delete"),
):
    admin.site.unregister(model)
    admin.site.register(model, _guarded(model_admin, names, permission))
