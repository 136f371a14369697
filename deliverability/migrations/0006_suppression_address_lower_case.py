"""Suppressed addresses in the one normalisation (config.addresses): lower case throughout.

Before, the local part kept its case, so ``Bob@x.org`` was not suppressed by
``bob@x.org``. Two entries that now coincide keep the older one.
"""

from django.db import migrations


def lower_case(apps, schema_editor):
    Suppression = apps.get_model("deliverability", "Suppression")
    for entry in Suppression.objects.order_by("created_at", "id").iterator(chunk_size=2000):
        lowered = entry.address.lower()
        if lowered == entry.address:
            continue
        if Suppression.objects.filter(address=lowered).exists():
            entry.delete()
        else:
            Suppression.objects.filter(id=entry.id).update(address=lowered)


class Migration(migrations.Migration):
    dependencies = [("deliverability", "0005_breaker_rule_override")]
    operations = [migrations.RunPython(lower_case, migrations.RunPython.noop, elidable=True)]
