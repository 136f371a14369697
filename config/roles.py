"""The admin roles: one group each, with exactly these permissions.

A person may hold several roles (groups add up). Superusers hold everything.
The README's security section says the same in words; ``tests/config/
test_admin_permissions.py`` walks every admin URL and action against it.

Created by the data migration ``project.0002_roles`` and again, idempotently,
by ``manage.py ensure_roles`` (after a flush, or when this list grows). A
group's permissions are set to exactly this list: hand-added extras go.
"""

from __future__ import annotations

AUTHOR, EDITOR, OPERATOR = "author", "editor", "operator"


def _model(app_label: str, model: str, *actions: str) -> list[tuple[str, str]]:
    return [(app_label, f"{action}_{model}") for action in actions]


# Compose, preview and send tests; see lists (to pick an audience) and reports.
AUTHOR_PERMISSIONS = [
    *_model("newsletter", "campaign", "add", "change", "view"),
    *_model("newsletter", "layout", "add", "change", "view"),
    ("newsletter", "view_mailinglist"),
    # The editor's library: upload images (never delete them), write reusable blocks.
    *_model("newsletter", "mediaasset", "add", "change", "view"),
    *_model("newsletter", "contentblock", "add", "change", "view"),
]

# Also: schedule, start, pause and cancel campaigns; the lists' people: imports,
# subscribers, unsubscribing. Not: a list's settings (its sender address is the
# operators'), exporting or erasing people, relays, breakers, tools.
EDITOR_PERMISSIONS = [
    *AUTHOR_PERMISSIONS,
    ("newsletter", "delete_campaign"), ("newsletter", "schedule_campaign"),
    ("newsletter", "delete_mediaasset"), ("newsletter", "delete_contentblock"),
    ("newsletter", "view_subscriber"),
    *_model("newsletter", "subscription", "change", "view"),
    *_model("newsletter", "subscriberimport", "add", "view"),
    # API tokens of their own (api.admin: only a superuser makes one for someone else).
    *_model("api", "apitoken", "add", "change", "view"),
]

# Relays, lists' settings, breakers, the delivery ledger, bounces, suppressions,
# the service tools and the people's data requests (export, erase).
OPERATOR_PERMISSIONS = [
    *_model("sending", "relaypool", "add", "change", "view"),
    *_model("sending", "relay", "add", "change", "delete", "view"),
    ("sending", "view_mailing"), ("sending", "view_delivery"),
    ("sending", "view_deliveryattempt"), ("sending", "view_transactionalemail"),
    ("deliverability", "view_breakertransition"), ("deliverability", "manage_breaker"),
    *_model("deliverability", "breakerruleoverride", "add", "change", "delete", "view"),
    *_model("deliverability", "suppression", "add", "delete", "view"),
    ("deliverability", "view_inboundmessage"), ("deliverability", "reclassify_inboundmessage"),
    ("deliverability", "view_bounceevent"),
    ("project", "view_sink"), ("project", "view_report"), ("project", "run_preflight"),
    ("project", "explain_headers"), ("project", "view_health"),
    ("project", "export_subscribers"),
    *_model("newsletter", "mailinglist", "add", "change", "view"),
    ("newsletter", "view_subscriber"), ("newsletter", "delete_subscriber"),
    *_model("newsletter", "subscription", "change", "view"),
    ("newsletter", "view_consentrecord"), ("newsletter", "view_consenttext"),
    *_model("sending", "warmupplan", "add", "change", "delete", "view"),
    *_model("api", "apitoken", "add", "change", "view"),
    *_model("api", "transactionaltemplate", "add", "change", "delete", "view"),
]

ROLES: dict[str, list[tuple[str, str]]] = {
    AUTHOR: AUTHOR_PERMISSIONS,
    EDITOR: EDITOR_PERMISSIONS,
    OPERATOR: OPERATOR_PERMISSIONS,
}

# Opening a subscriber's preference page as them gives what the page gives:
# their data (export), erasing them, changing their subscriptions.
PREFERENCES_PAGE_PERMISSIONS = ("project.export_subscribers", "newsletter.delete_subscriber",
                                "newsletter.change_subscription")


def _create_permissions(apps) -> None:
    """Permissions exist only after ``post_migrate``; a migration needs them now."""
    from django.contrib.auth.management import create_permissions

    for app_label in sorted({app for perms in ROLES.values() for app, _ in perms}):
        config = apps.get_app_config(app_label)
        if getattr(config, "models_module", None) is None:
            config.models_module = True  # historical registry: let create_permissions run
            create_permissions(config, apps=apps, verbosity=0)
            config.models_module = None
        else:
            create_permissions(config, apps=apps, verbosity=0)


def roles_ensure(apps=None) -> dict[str, object]:
    """Create every role group with exactly its permissions; returns {name: group}.

    From a migration (``apps`` given), permissions of models that do not exist yet
    at that point are left out: a later migration (one per model added to a role)
    runs this again once they do."""
    strict = apps is None
    if apps is None:
        from django.apps import apps as registry

        apps = registry
    _create_permissions(apps)
    group_model = apps.get_model("auth", "Group")
    permission_model = apps.get_model("auth", "Permission")
    groups = {}
    for name, wanted in ROLES.items():
        group, _ = group_model.objects.get_or_create(name=name)
        permissions = []
        for app_label, codename in wanted:
            permission = permission_model.objects.filter(
                content_type__app_label=app_label, codename=codename).first()
            if permission is None and not strict:
                continue
            if permission is None:
                raise LookupError(f"role {name}: no permission {app_label}.{codename}")
            permissions.append(permission)
        group.permissions.set(permissions)
        groups[name] = group
    return groups
