"""django-celery-beat's task admin, with its actions behind the change permission.

Upstream, "Run selected tasks" and the enable/disable actions carry no permission,
so anyone who may only view the periodic tasks could run or stop them.
"""

from django.contrib import admin
from django_celery_beat.admin import PeriodicTaskAdmin
from django_celery_beat.models import PeriodicTask

GUARDED_ACTIONS = ("enable_tasks", "disable_tasks", "toggle_tasks", "run_tasks")


class GuardedPeriodicTaskAdmin(PeriodicTaskAdmin):
    def get_actions(self, request):
        actions = super().get_actions(request)
        if not self.has_change_permission(request):
            for name in GUARDED_ACTIONS:
                actions.pop(name, None)
        return actions


admin.site.unregister(PeriodicTask)
admin.site.register(PeriodicTask, GuardedPeriodicTaskAdmin)
