"""Which Chromium the browser tests drive, found the way users have one.

    python -m tests.chromium    # prints the path; exit 1: none found, 2: $CHROMIUM is wrong

In order: ``$CHROMIUM`` (a path, or a name looked up on the PATH), then Chromium
or Chrome on the PATH (Debian's ``chromium``, Ubuntu's ``chromium-browser``,
``google-chrome``; on macOS the application bundles), then the browsers Playwright installed itself
(``playwright install chromium``, in ``$PLAYWRIGHT_BROWSERS_PATH`` or its cache).
``make test`` runs this first and installs a browser when none is found; the
tests (``tests/e2e/browser.py``) use the same answer.
"""

from __future__ import annotations

import os
import shutil
import sys

ON_PATH = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")
# macOS keeps applications off the PATH.
APPLICATIONS = ("/Applications/Chromium.app/Contents/MacOS/Chromium",
                "/Applications/Google Chrome.app/Contents/MacOS/Google Chrome")


class ChromiumMisconfigured(Exception):
    """``$CHROMIUM`` is set but names no executable: an error, not a reason to look elsewhere."""


def _executable(path: str | os.PathLike) -> bool:
    return os.path.isfile(path) and os.access(path, os.X_OK)


def playwright_chromium() -> str | None:
    """The Chromium Playwright installed for this version of Playwright, if it is there."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    try:
        with sync_playwright() as playwright:
            path = playwright.chromium.executable_path
    except Exception:  # a driver that cannot start has no browser to offer
        return None
    return path if path and _executable(path) else None


def find_chromium(environ: dict[str, str] | None = None) -> str | None:
    """The browser to launch, or None when this machine has none."""
    environ = os.environ if environ is None else environ
    search_path = environ.get("PATH", "")
    wanted = environ.get("CHROMIUM", "").strip()
    if wanted:
        found = wanted if os.sep in wanted else shutil.which(wanted, path=search_path)
        if found and _executable(found):
            return os.path.abspath(found)  # not resolved: a snap's link names the snap
        raise ChromiumMisconfigured(f"CHROMIUM={wanted} is not an executable")
    for name in ON_PATH:
        found = shutil.which(name, path=search_path)
        if found:
            return found
    if sys.platform == "darwin":
        for path in APPLICATIONS:
            if _executable(path):
                return path
    return playwright_chromium()


def main() -> int:
    try:
        path = find_chromium()
    except ChromiumMisconfigured as exc:
        print(f"browser: {exc}", file=sys.stderr)
        return 2
    if path is None:
        print("browser: no Chromium found ($CHROMIUM, PATH, Playwright's browsers)",
              file=sys.stderr)
        return 1
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
