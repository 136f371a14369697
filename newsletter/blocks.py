"""Reusable content blocks: checked like a campaign body, offered to the editor's toolbar.

A block is inserted into a campaign body as a copy (the toolbar puts its text in
the body), so a campaign never changes because a block changed later, and what
was sent stays what the campaign says. The block's personalisation is checked
here with the body's rules, so an inserted block never makes a body invalid.
"""

from __future__ import annotations

from newsletter.campaign_render import body_html
from newsletter.media_models import ContentBlock
from newsletter.personalisation import RESERVED, personalisation_problem
from sending.render import compile_template

MAX_CHOICES = 500


def content_block_problem(body: str) -> str | None:
    """None when the block's personalisation is valid; else what to write instead."""
    if not body.strip():
        return "The block is empty."
    problem = personalisation_problem(body, html=True)
    if problem is None and any(name.split(".")[0] in RESERVED
                               for name in compile_template(body, html=True).fields):
        problem = ("{{ track... }} is filled in by click tracking when a campaign starts; "
                   "do not write it.")
    return problem


def content_block_save(block: ContentBlock, *, user=None) -> ContentBlock:
    problem = content_block_problem(block.body)
    if problem:
        from newsletter.exceptions import InvalidInput

        raise InvalidInput(problem)
    if block.pk is None and user is not None and user.is_authenticated:
        block.created_by = user
    block.save()
    return block


def content_block_choices() -> list[dict]:
    """Every block as the toolbar inserts it: its source, and the source as HTML too
    (for an HTML body, whatever the block's own format)."""
    rows = ContentBlock.objects.order_by("name").values_list(
        "id", "name", "body", "body_format")[:MAX_CHOICES]
    return [{"id": pk, "name": name, "body": body, "body_format": body_format,
             "html": body_html(body, body_format)}
            for pk, name, body, body_format in rows]
