"""Permissions of the admin pages that belong to no model.

Django hangs every permission on a content type, so these hang on a model
without a table (``managed = False``): nothing is stored, ``manage.py migrate``
creates the permissions like any other, and the groups of ``config.roles``
grant them.
"""

from django.db import models


class ServicePage(models.Model):
    class Meta:
        managed = False
        default_permissions = ()
        verbose_name = "service page"
        permissions = [
            ("view_sink", "Can read the mail the local SMTP sink received"),
            ("view_report", "Can see the daily delivery report"),
            ("run_preflight", "Can run the pre-flight reputation checks (they open "
                              "connections to the relays and ask DNS)"),
            ("explain_headers", "Can use the Received-header explainer"),
            ("view_health", "Can see the detailed health page"),
            ("export_subscribers", "Can export a list's subscribers as CSV"),
        ]

    def __str__(self) -> str:
        return "service page"
