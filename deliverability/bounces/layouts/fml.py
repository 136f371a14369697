"""fml, the mailing-list manager (fml.org): its refusals to a poster.

fml marks its mail with ``X-MLServer: fml [fml x.y]`` or ``List-Software: fml``
(fml's documentation, "headers fml adds"). When a post is refused (members_only
posting, "$PERMIT_POST_FROM", or a command it does not know) it answers the poster in
its own words, e.g. "You are not a member of this mailing list", "your mail is
rejected", "command is not found". The refusal is about the sender, not an address:
the list itself is the recipient.
"""

from __future__ import annotations

import re

from .. import mime, textscan
from ..model import Failure, Report
from ._common import failure

NAME = "fml"
SOURCE = "fml.org documentation (X-MLServer, members_only posting, deny notices)"
_REFUSED = re.compile(r"not (?:a )?member|members? only|(?:is|was|been) (?:rejected|denied)|"
                      r"deny|not permitted|not allowed", re.I)
_COMMAND = re.compile(r"command (?:is )?not (?:found|defined|recognized)|unknown command", re.I)


def detect(report: Report) -> bool:
    h = report.headers
    return "fml" in h.get("x-mlserver", "").lower() or \
        h.get("list-software", "").lower().startswith("fml")


def parse(report: Report) -> list[Failure]:
    h = report.headers
    post = h.get("list-post", "") or h.get("x-ml-address", "") or h.get("from", "")
    found = textscan.addresses(mime.decode_words(post))
    rcpt = found[0] if found else report.sender
    text = textscan.squash(report.notice[:1500])
    if _COMMAND.search(text):
        reason = "systemerror"
    elif _REFUSED.search(text):
        reason = "rejected"
    else:
        return []
    return [failure(rcpt, text, reason=reason)]
