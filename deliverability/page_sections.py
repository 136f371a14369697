"""Sections other apps add to the breaker page (deliverability imports neither of them).

``sending`` registers its warm-up plans here at start-up, so the operator sees in
one place what holds mail back: breakers and warm-up caps. A section is a dict
``{"title", "template", "rows"}`` rendered with its own template.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

logger = logging.getLogger(__name__)

_sections: dict[str, Callable[[], dict]] = {}


def register_breaker_page_section(name: str, build: Callable[[], dict]) -> None:
    _sections[name] = build


def breaker_page_sections() -> list[dict]:
    found = []
    for name, build in _sections.items():
        try:
            found.append(build())
        except Exception:  # a broken section must not hide the breakers
            logger.exception("breaker page section %s failed", name)
    return found
