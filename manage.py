#!/usr/bin/env python
"""Django's command-line utility; configuration errors and an unmigrated database are one line."""

import os
import sys

# Commands that read files and print, with no key, database or service: they work on
# a fresh machine with no configuration at all.
NO_CONFIGURATION = {"classify_bounce", "explain_headers", "help", "--help", "-h", "version",
                    "--version"}


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    from django.core.management import execute_from_command_line
    from django.db import DatabaseError

    from config.env import ConfigError

    try:
        if (sys.argv[1] if len(sys.argv) > 1 else "help") not in NO_CONFIGURATION:
            from config.startup import require_secret_key

            require_secret_key()
        execute_from_command_line(sys.argv)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        sys.exit(2)
    except DatabaseError as exc:
        from config.database import not_migrated

        line = not_migrated(exc)
        if line is None:
            raise
        command = sys.argv[1] if len(sys.argv) > 1 else "manage.py"
        print(f"{command}: {line}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
