"""Subscriber addresses in the one normalisation (config.addresses): lower case throughout.

A subscriber whose lower-cased address already belongs to another row keeps
its spelling (merging two people's subscriptions and consent is an operator's
decision); every comparison normalises, so both are suppressed, unsubscribed
and mailed once as one address.
"""

from django.db import migrations
from django.db.models import F
from django.db.models.functions import Lower


def lower_case(apps, schema_editor):
    Subscriber = apps.get_model("newsletter", "Subscriber")
    mixed = (Subscriber.objects.annotate(lowered=Lower("email")).exclude(email=F("lowered"))
             .values_list("id", "email"))
    for subscriber_id, email in mixed.iterator(chunk_size=2000):
        lowered = email.lower()
        if not Subscriber.objects.filter(email=lowered).exists():
            Subscriber.objects.filter(id=subscriber_id).update(email=lowered)


class Migration(migrations.Migration):
    dependencies = [("newsletter", "0005_editor_group_default_layout")]
    operations = [migrations.RunPython(lower_case, migrations.RunPython.noop, elidable=True)]
