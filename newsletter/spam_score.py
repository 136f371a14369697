"""SpamAssassin's verdict on a message, from a ``spamd`` through aiospamc.

``spamd_score`` sends the bytes with the REPORT command (spamc protocol) and
returns the score, the threshold and every rule hit with its points and
description, as spamd's report lists them (``pts rule name description``).
``plain_words`` puts the commonest rules a newsletter hits into what an editor
can act on; any other rule keeps SpamAssassin's own description.

SPAMD_URL: ``spamd://host[:port]`` or ``tcp://host[:port]`` (783 when no port:
spamd's default, ``man spamd``), or ``unix:///path/to/spamd.sock``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

SPAMD_DEFAULT_PORT = 783
# Rule lines of spamd's report: "-0.0 NO_RECEIVED   Informational: message has ...",
# wrapped description lines start with blanks (Mail::SpamAssassin::Conf "report").
_RULE_LINE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s+([A-Z0-9_]+)\s+(.*)$")
_CONTINUATION = re.compile(r"^\s{20,}(\S.*)$")


class SpamdError(Exception):
    """spamd could not be asked (unreachable, timed out, refused, bad answer)."""


@dataclass(frozen=True)
class RuleHit:
    name: str
    points: float
    description: str

    def as_dict(self) -> dict:
        return {"name": self.name, "points": self.points, "description": self.description}


@dataclass(frozen=True)
class SpamScore:
    score: float
    threshold: float
    rules: tuple[RuleHit, ...]

    def as_dict(self) -> dict:
        return {"score": self.score, "threshold": self.threshold,
                "rules": [r.as_dict() for r in self.rules]}

    @classmethod
    def from_dict(cls, data: dict) -> SpamScore:
        return cls(score=float(data["score"]), threshold=float(data["threshold"]),
                   rules=tuple(RuleHit(**r) for r in data["rules"]))


@dataclass(frozen=True)
class SpamdAddress:
    host: str = ""
    port: int = SPAMD_DEFAULT_PORT
    socket_path: str = ""


def spamd_address(url: str) -> SpamdAddress:
    """Parse SPAMD_URL; a ValueError names what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme == "unix":
        if not parts.path:
            raise ValueError("unix:// needs a socket path, e.g. unix:///run/spamd.sock")
        return SpamdAddress(socket_path=parts.path)
    if parts.scheme not in ("spamd", "tcp"):
        raise ValueError("use spamd://host:port, tcp://host:port or unix:///path")
    if not parts.hostname:
        raise ValueError("no host")
    try:
        port = parts.port or SPAMD_DEFAULT_PORT
    except ValueError as error:
        raise ValueError(f"bad port: {error}") from None
    return SpamdAddress(host=parts.hostname, port=port)


def parse_report(body: str) -> tuple[RuleHit, ...]:
    """The rule table of spamd's REPORT body (the lines after the dashed ruler)."""
    lines = body.splitlines()
    start = next((i + 1 for i, line in enumerate(lines) if line.startswith("----")), None)
    if start is None:
        return ()
    hits: list[RuleHit] = []
    for line in lines[start:]:
        found = _RULE_LINE.match(line)
        if found:
            hits.append(RuleHit(found.group(2), float(found.group(1)), found.group(3).strip()))
            continue
        more = _CONTINUATION.match(line)
        if more and hits:
            last = hits[-1]
            hits[-1] = RuleHit(last.name, last.points, f"{last.description} {more.group(1)}")
    return tuple(hits)


async def _report(message: bytes, address: SpamdAddress, timeout: float):
    import aiospamc
    from aiospamc.connections import Timeout

    return await aiospamc.report(
        message, host=address.host or "localhost", port=address.port,
        socket_path=Path(address.socket_path) if address.socket_path else None,
        timeout=Timeout(total=timeout, connection=min(timeout, 3.0), response=timeout))


def _run(coroutine):
    """Run a coroutine from sync code, also from a thread that already runs a loop."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def spamd_score(message: bytes, url: str, *, timeout: float = 10.0) -> SpamScore:
    """SpamAssassin's score of ``message``; SpamdError when spamd cannot tell."""
    try:
        address = spamd_address(url)
    except ValueError as error:
        raise SpamdError(f"SPAMD_URL={url!r}: {error}") from None
    try:
        response = _run(_report(message, address, timeout))
    except Exception as error:  # aiospamc's connection, timeout and protocol errors
        where = address.socket_path or f"{address.host}:{address.port}"
        raise SpamdError(f"spamd at {where} did not answer: "
                         f"{type(error).__name__}{': ' + str(error) if str(error) else ''}"
                         ) from error
    verdict = response.headers.get("Spam")
    if verdict is None:
        raise SpamdError("spamd answered without a score")
    return SpamScore(score=float(verdict.score), threshold=float(verdict.threshold),
                     rules=parse_report(response.body.decode("utf-8", "replace")))


# --------------------------------------------------------------------------- plain words
# The rules a newsletter commonly hits, by name or name prefix, in words an editor can act
# on. Source: SpamAssassin 4.0's rule files (20_html_tests.cf, 20_head_tests.cf,
# 20_body_tests.cf, 20_uri_tests.cf, 25_dkim.cf, 72_active.cf: their ``describe`` lines)
# and the Perl behind their evals (Mail::SpamAssassin::Plugin::HTMLEval: html_image_only
# takes the length of the whole HTML source, html_image_ratio the non-blank characters of
# the rendered text over the image area, width x height, 200 x 200 when not given).
PLAIN_WORDS: dict[str, str] = {
    "HTML_IMAGE_ONLY_": "the HTML has images and is short (under 3,200 bytes, layout "
                        "included): little text with pictures; write more text, or use "
                        "fewer images",
    "HTML_IMAGE_RATIO_": "the images cover much more area than the text does: add text or "
                         "make the images smaller",
    "HTML_SHORT_LINK_IMG_": "very short HTML with a linked image: add text around it",
    "MIME_HTML_ONLY": "there is no plain-text part: send a text version too",
    "MIME_HTML_MOSTLY": "most of the message is HTML, the text part is very short",
    "MPART_ALT_DIFF": "the plain-text and the HTML parts say different things: regenerate "
                      "the text part from the HTML or edit it to match",
    "HTML_MIME_NO_HTML_TAG": "the HTML part lacks an <html> tag",
    "HTML_FONT_LOW_CONTRAST": "some text has (almost) the colour of its background, a trick "
                              "to hide words: make it readable",
    "HTML_OBFUSCATE_": "the HTML spells words with character codes, as spam does to hide them",
    "HTML_TAG_BALANCE_": "the HTML has unclosed or extra tags",
    "HTML_COMMENT_SAVED_URL": "the HTML looks like a web page saved from a browser",
    "SUBJ_ALL_CAPS": "the subject is in capitals: write it in ordinary case",
    "EMPTY_MESSAGE": "the message has no text at all",
    "DKIM_SIGNED": "the message carries a DKIM signature (checked by DKIM_VALID)",
    "DKIM_VALID": "the DKIM signature verified: this counts in the sender's favour",
    "DKIM_INVALID": "the DKIM signature did not verify: check the DKIM record in DNS",
    "DKIM_ADSP_": "no valid signature of the author's domain",
    "URIBL_": "a link's domain is on a URI blocklist: remove or replace that link",
    "URI_NOVOWEL": "a link's host name has a long run of consonants, as random spam "
                   "domains do",
    "URI_HEX": "a link's host name has a long hexadecimal run",
    "NUMERIC_HTTP_ADDR": "a link points at a numeric IP address: use a host name",
    "NORMAL_HTTP_TO_IP": "a link points at a numeric IP address: use a host name",
    "HEADER_FROM_DIFFERENT_DOMAINS": "the bounce address (Return-Path, BOUNCE_DOMAIN) is "
                                     "not on the From domain: use a subdomain of it",
    "WEIRD_PORT": "a link has a port number (as SITE_URL has on a development machine)",
    "FREEMAIL_FROM": "the From address is at a free mail provider: send from your own "
                     "domain",
    "MISSING_DATE": "no Date header",
    "MISSING_MID": "no Message-ID header",
    "NO_RECEIVED": "informational, no points: this check ran before the mail left",
    "NO_RELAYS": "informational, no points: this check ran before the mail left",
    "HTML_MESSAGE": "informational: the message has HTML",
}


def plain_words(rule: RuleHit) -> str:
    """What the rule means for the editor: the table's words, else SpamAssassin's own."""
    for key, words in PLAIN_WORDS.items():
        if rule.name == key or (key.endswith("_") and rule.name.startswith(key)):
            return words
    return rule.description
