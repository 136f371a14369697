"""Personalisation: a tiny sandboxed template language, compiled once, rendered per recipient.

Syntax: ``{{ subscriber.name }}``, ``{{ subscriber.attributes.city }}``,
``{{ unsubscribe_url }}``, with one optional filter:
``{{ subscriber.name|default:"reader" }}``. Only the names in ``ALLOWED`` may
start a path, and a path only walks dictionary keys (never attributes or
calls), so a template cannot reach anything else. A missing field renders
empty. ``html=True`` escapes values (the template's own markup is kept).

``compile_template`` raises ``TemplateError`` with the position of the first
bad tag, which the campaign editor shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html import escape

ALLOWED = frozenset({
    "subscriber", "email", "unsubscribe_url", "one_click_url", "preferences_url", "list_id",
    "track",  # signed click and open links, filled by newsletter.tracking
})

_TAG = re.compile(r"\{\{(.*?)\}\}", re.DOTALL)
_EXPR = re.compile(
    r"""^\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z0-9_-]+)*)\s*"""
    r"""(?:\|\s*default\s*:\s*(?:"([^"]*)"|'([^']*)'))?\s*$""")


class TemplateError(ValueError):
    """A template tag is malformed or names a field that is not allowed."""


@dataclass(frozen=True)
class _Field:
    path: tuple[str, ...]
    default: str


class Template:
    __slots__ = ("_parts", "html", "source")

    def __init__(self, source: str, parts: list, html: bool):
        self.source = source
        self._parts = parts
        self.html = html

    @property
    def fields(self) -> list[str]:
        return [".".join(p.path) for p in self._parts if isinstance(p, _Field)]

    def render(self, context: dict) -> str:
        out = []
        append = out.append
        html = self.html
        for part in self._parts:
            if part.__class__ is str:
                append(part)
                continue
            value = context
            for key in part.path:
                value = value.get(key) if isinstance(value, dict) else None
                if value is None:
                    break
            if value is None or value == "":
                value = part.default
            elif value.__class__ is not str:
                value = str(value)
            append(escape(value) if html else value)
        return "".join(out)


def compile_template(source: str, *, html: bool = False) -> Template:
    parts: list = []
    position = 0
    for match in _TAG.finditer(source):
        if match.start() > position:
            parts.append(source[position:match.start()])
        expression = _EXPR.match(match.group(1))
        if not expression:
            raise TemplateError(f"bad tag {match.group(0)!r} at character {match.start()}")
        path = tuple(expression.group(1).split("."))
        if path[0] not in ALLOWED:
            raise TemplateError(
                f"unknown field {path[0]!r} at character {match.start()} "
                f"(allowed: {', '.join(sorted(ALLOWED))})")
        default = expression.group(2) if expression.group(2) is not None else (
            expression.group(3) or "")
        parts.append(_Field(path, default))
        position = match.end()
    if position < len(source):
        parts.append(source[position:])
    if "{{" in "".join(p for p in parts if isinstance(p, str)):
        raise TemplateError("unclosed '{{'")
    return Template(source, parts, html)


def render(source: str, context: dict, *, html: bool = False) -> str:
    """Compile and render once (previews); senders keep the compiled ``Template``."""
    return compile_template(source, html=html).render(context)
