"""Every model of ours reads right in the admin: no "Deliverys" (issue 21).

English plurals (regular rules): a consonant + y takes -ies, and s, x, z, ch, sh
take -es. A model whose plural Django made by adding "s" to such a name needs
its own ``verbose_name_plural``.
"""

import re

from django.apps import apps

OUR_APPS = {"project", "newsletter", "sending", "deliverability", "api"}


def _regular_plural(name: str) -> str:
    if re.search(r"[^aeiou]y$", name):
        return name[:-1] + "ies"
    if re.search(r"(s|x|z|ch|sh)$", name):
        return name + "es"
    return name + "s"


def test_every_plural_follows_english():
    wrong = {}
    for model in apps.get_models():
        meta = model._meta
        if meta.app_label not in OUR_APPS:
            continue
        singular, plural = str(meta.verbose_name), str(meta.verbose_name_plural)
        if plural != _regular_plural(singular) and plural == singular + "s":
            wrong[meta.label] = plural
    assert not wrong, f"plural names made by adding 's': {wrong}"


def test_the_delivery_ledger_is_deliveries(admin_client):
    from sending.models import Delivery

    assert str(Delivery._meta.verbose_name_plural) == "deliveries"
    page = admin_client.get("/admin/sending/").content.decode()
    assert "Deliveries" in page and "Deliverys" not in page
