from django.core.management.base import BaseCommand

from config.roles import ROLES, roles_ensure


class Command(BaseCommand):
    help = "Create the admin role groups (author, editor, operator) with their permissions."

    def handle(self, *args, **options):
        for name, group in roles_ensure().items():
            self.stdout.write(f"{name}: {group.permissions.count()} permissions "
                              f"({len(ROLES[name])} defined)")
