"""A local spamd (SpamAssassin's daemon) for `make run` and the tests.

It runs in the foreground of its own process group on a loopback port, one child
(``--max-children 1``: a developer's checklist, not a mail stream), without user
preference files (``-x``), Bayes or auto-learning (a verdict that learns from what it
was shown would drift between runs), its pid file and log in a folder of ours.
The rules are the ones the package ships (``/usr/share/spamassassin``), or newer
ones when ``sa-update`` has been run; spamd starts with either.
"""

from __future__ import annotations

import shutil
from pathlib import Path

INSTALL_HINT = ("install SpamAssassin's daemon: `apt-get install spamassassin spamd` on "
                "Debian/Ubuntu, `dnf install spamassassin` on Fedora, "
                "`brew install spamassassin` on macOS")


def spamd_binary() -> str | None:
    """The spamd on PATH, or in sbin (not on a non-root PATH on Debian)."""
    found = shutil.which("spamd")
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin"):
        candidate = Path(folder) / "spamd"
        if candidate.is_file():
            return str(candidate)
    return None


def spamd_command(binary: str, port: int, folder: Path, *, local_only: bool = False
                  ) -> list[str]:
    """``local_only``: no DNS tests (blocklists, SPF, DKIM keys), for repeatable tests."""
    folder.mkdir(parents=True, exist_ok=True)
    command = [
        binary, f"--listen=127.0.0.1:{port}", "--max-children=1", "--min-children=1",
        "--nouser-config", f"--helper-home-dir={folder}",
        f"--pidfile={folder / 'spamd.pid'}", f"--syslog={folder / 'spamd.log'}",
        "--cf=use_bayes 0", "--cf=bayes_auto_learn 0",
    ]
    if local_only:
        command.append("--local")
    return command
