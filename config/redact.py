"""Remove an address from free text (SMTP replies, bounce diagnostics, subjects)."""

from __future__ import annotations

import re

ERASED = "[erased]"


def without_address(text: str, address: str) -> str:
    """``text`` with every spelling of ``address`` (any case) replaced by ``[erased]``."""
    if not text or not address:
        return text
    return re.sub(re.escape(address), ERASED, text, flags=re.IGNORECASE)
