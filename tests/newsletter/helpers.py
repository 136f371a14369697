"""Small helpers shared by the newsletter tests."""

from __future__ import annotations

import re

from sending.models import TransactionalEmail

LINK = re.compile(r"https?://[^\s\"'<>]+")


def confirmation_mails(to: str | None = None):
    mails = TransactionalEmail.objects.filter(purpose="confirmation").order_by("id")
    return mails.filter(to=to) if to else mails


def link_path(text: str, marker: str) -> str:
    """The path of the first link in ``text`` that contains ``marker``."""
    for url in LINK.findall(text):
        if marker in url:
            return "/" + url.split("://", 1)[1].split("/", 1)[1]
    raise AssertionError(f"no link with {marker!r} in {text!r}")
