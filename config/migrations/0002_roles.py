"""The author, editor and operator groups (config.roles); the editor group is kept."""

from django.db import migrations


def forwards(apps, schema_editor):
    from config.roles import roles_ensure

    roles_ensure(apps)


def backwards(apps, schema_editor):
    # The editor group predates this migration (newsletter 0005): only the new ones go.
    apps.get_model("auth", "Group").objects.filter(name__in=["author", "operator"]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("project", "0001_initial"),
        ("newsletter", "0005_editor_group_default_layout"),
        ("sending", "0005_transactional_review"),
        ("deliverability", "0005_breaker_rule_override"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(forwards, backwards)]
