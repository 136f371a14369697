"""First run: the sender's postal address in the shipped layout, so a first campaign passes.

Marketing mail must carry the sender's postal address (CAN-SPAM, 15 U.S.C.
7704(a)(5)(A)(iii); the German TMG/DDG imprint duty; the checklist enforces it
through the layout's footer). ``manage.py ensure_admin`` (run by ``make run``)
fills it from ``SENDER_POSTAL_ADDRESS``, or asks on a terminal, only while the
default layout has none: an address set in the admin is never overwritten.
"""

from __future__ import annotations

from newsletter.campaign_models import Layout
from newsletter.exceptions import InvalidInput

MAX_POSTAL_ADDRESS = 500


def postal_address_clean(raw: str) -> str:
    """Lines of an address (``\\n`` or ``\\\\n`` in an env var, or commas); InvalidInput."""
    value = (raw or "").replace("\\n", "\n").replace("\r\n", "\n").strip()
    lines = [line.strip() for line in value.split("\n") if line.strip()]
    if not lines:
        raise InvalidInput("The postal address is empty.")
    text = "\n".join(lines)
    if len(text) > MAX_POSTAL_ADDRESS:
        raise InvalidInput(f"The postal address is longer than {MAX_POSTAL_ADDRESS} characters.")
    if not all(line.isprintable() for line in lines):
        raise InvalidInput("The postal address contains control characters.")
    if "{{" in text or "{%" in text:
        raise InvalidInput("The postal address cannot contain template tags.")
    return text


def default_layout_missing_address() -> Layout | None:
    """The default layout when it still has no postal address, else None."""
    from newsletter.campaigns import layout_default

    layout = layout_default()
    return None if layout.postal_address.strip() else layout


def postal_address_fill(raw: str) -> Layout | None:
    """Put the address into the default layout if it has none; the layout changed, or None."""
    layout = default_layout_missing_address()
    if layout is None:
        return None
    layout.postal_address = postal_address_clean(raw)
    layout.save(update_fields=["postal_address", "updated_at"])
    return layout
