"""Helpers the layout parsers share."""

from __future__ import annotations

from .. import textscan
from ..model import Failure


def failure(recipient: str, diagnostic: str, *, command: str = "", reason: str = "",
            remote_mta: str = "", action: str = "failed") -> Failure:
    diag = textscan.squash(diagnostic)
    code, status = textscan.reply_code(diag)
    return Failure(recipient=recipient.lower().strip("<>\"' ."), diagnostic=diag,
                   smtp_code=code, status=status or textscan.any_status(diag),
                   command=command or textscan.command(diag), reason=reason,
                   remote_mta=remote_mta or textscan.remote_host(diag), action=action)


def first_address(text: str) -> str:
    found = textscan.addresses(text)
    return found[0].lower() if found else ""
