"""The "editor" role: compose, test and schedule campaigns; nothing about relays or safeguards.

Used by the data migration (with the historical app registry) and by tests
(whose flushed databases lose the migration's rows).
"""

from __future__ import annotations

EDITOR_GROUP = "editor"
# (app label, codename). Lists and subscribers are view-only: their sender
# settings, relays, pools and breakers belong to the operators.
EDITOR_PERMISSIONS = [
    ("newsletter", "add_campaign"), ("newsletter", "change_campaign"),
    ("newsletter", "delete_campaign"), ("newsletter", "view_campaign"),
    ("newsletter", "schedule_campaign"),
    ("newsletter", "add_layout"), ("newsletter", "change_layout"),
    ("newsletter", "view_layout"),
    ("newsletter", "view_mailinglist"), ("newsletter", "view_subscriber"),
    ("newsletter", "view_subscription"),
]


def editor_group_ensure(apps=None):
    """Create (or complete) the editor group; returns it."""
    if apps is None:
        from django.apps import apps as registry

        apps = registry
    from django.contrib.auth.management import create_permissions

    config = apps.get_app_config("newsletter")
    if getattr(config, "models_module", None) is None:
        config.models_module = True  # historical registry: let create_permissions run
        create_permissions(config, apps=apps, verbosity=0)
        config.models_module = None
    else:
        create_permissions(config, apps=apps, verbosity=0)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    group, _ = group_model.objects.get_or_create(name=EDITOR_GROUP)
    for app_label, codename in EDITOR_PERMISSIONS:
        permission = permission_model.objects.filter(
            content_type__app_label=app_label, codename=codename).first()
        if permission is not None:
            group.permissions.add(permission)
    return group
