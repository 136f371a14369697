"""A small, forgiving MIME reader for bounce messages.

The stdlib ``email`` parser is correct but slow (it builds a full object tree and
runs header policies); a bounce only needs headers, the part types and the decoded
text of a few parts. This reader never raises on junk: whatever it cannot make
sense of stays plain text.
"""

from __future__ import annotations

import base64
import binascii
import quopri
import re
from dataclasses import dataclass, field
from email.header import decode_header
from functools import lru_cache

MAX_DEPTH = 6  # nested multiparts deeper than this are treated as text
MAX_PARTS = 64
MAX_HEADER_BYTES = 256 * 1024  # a header block beyond this is junk, not a report

_HEADER_LINE = re.compile(r"([!-9;-~]+)[ \t]*:[ \t]*(.*)")
_PARAM = re.compile(r';\s*([\w\-*]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;\s]+))')
_ENCODED_WORD = re.compile(r"=\?[^?\s]+\?[bBqQ]\?[^?\s]*\?=")


@dataclass(slots=True)
class Part:
    """One MIME leaf (or a non-MIME body): its headers and decoded text."""

    ctype: str
    headers: dict[str, str]
    text: str
    children: list[Part] = field(default_factory=list)


def split_head_body(text: str) -> tuple[str, str]:
    """Split at the first empty line; a message without one is all header."""
    if text.startswith("\n"):
        return "", text[1:]
    idx = text.find("\n\n")
    if idx < 0:
        return text, ""
    return text[:idx], text[idx + 2 :]


# A continuation line starts with white space; some mailers also break before a bare
# parameter ("boundary=...", unindented), which is read as a continuation too.
_HEADER_FIELD = re.compile(
    r"^([!-9;-~]+)[ \t]*:[ \t]*([^\n]*(?:\n(?:[ \t]|(?:boundary|charset|report-type|"
    r"name|filename|format|type)=)[^\n]*)*)", re.M | re.I)
_FOLD = re.compile(r"\n[ \t]*")


def parse_headers(head: str) -> dict[str, str]:
    """Unfold and read headers; names lower-cased, first occurrence wins.

    A line that is neither a header nor a continuation is skipped, so a mangled
    header block still yields the headers it has.
    """
    out: dict[str, str] = {}
    if len(head) > MAX_HEADER_BYTES:
        head = head[:MAX_HEADER_BYTES]
    for m in _HEADER_FIELD.finditer(head):
        name = m.group(1).lower()
        if name not in out:
            value = m.group(2)
            out[name] = _FOLD.sub(" ", value).strip() if "\n" in value else value.strip()
    return out


def content_type(value: str | None) -> tuple[str, dict[str, str]]:
    """``text/plain; charset=x`` -> ("text/plain", {"charset": "x"}).

    Cached (the same few values recur in every report): treat the dict as read-only."""
    if not value:
        return "text/plain", {}
    if len(value) > 300:
        return _content_type(value)
    return _content_type_cached(value)


def _content_type(value: str) -> tuple[str, dict[str, str]]:
    main = value.split(";", 1)[0].strip().lower() or "text/plain"
    params = {m.group(1).lower(): (m.group(2) if m.group(2) is not None else m.group(3))
              for m in _PARAM.finditer(value)}
    return main, params


_content_type_cached = lru_cache(maxsize=2048)(_content_type)


def decode_words(value: str) -> str:
    """Decode RFC 2047 encoded words (Subject, From); leave the rest alone."""
    if "=?" not in value or not _ENCODED_WORD.search(value):
        return value
    try:
        out = []
        for chunk, charset in decode_header(value):
            if isinstance(chunk, bytes):
                out.append(_to_text(chunk, charset))
            else:
                out.append(chunk)
        return "".join(out)
    except Exception:
        return value


def _to_text(data: bytes, charset: str | None) -> str:
    if charset:
        try:
            return data.decode(charset.strip().strip('"').lower(), "replace")
        except (LookupError, ValueError):
            pass
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data.decode("latin-1")


def decode_body(body: str, cte: str, charset: str | None) -> str:
    """Undo the transfer encoding. The body arrived as latin-1 text (one char per byte)."""
    cte = cte.strip().lower()
    if cte not in ("base64", "quoted-printable"):
        if body.isascii() and not (charset and "2022" in charset):
            return body  # plain ASCII needs no work (ISO-2022 is 7-bit but escaped)
        if not charset:
            return fix_8bit(body)
    raw = body.encode("latin-1", "replace")
    try:
        if cte == "base64":
            raw = base64.b64decode(re.sub(rb"[^A-Za-z0-9+/=]", b"", raw) + b"==", validate=False)
        elif cte == "quoted-printable":
            raw = quopri.decodestring(raw)
    except (binascii.Error, ValueError):
        return body
    return _to_text(raw, charset)


def _split_multipart(body: str, boundary: str) -> list[str]:
    """Body parts between ``--boundary`` lines (a missing close delimiter is tolerated)."""
    delim = "--" + boundary
    text = "\n" + body
    chunks: list[str] = []
    pos = text.find("\n" + delim)
    while pos >= 0:
        line_end = text.find("\n", pos + 1)
        if text.startswith("--", pos + 1 + len(delim)):
            break  # close delimiter
        if line_end < 0:
            break
        nxt = text.find("\n" + delim, line_end)
        chunks.append(text[line_end + 1 : nxt if nxt >= 0 else len(text)])
        pos = nxt
    return chunks


def parse_entity(text: str, depth: int = 0, budget: list[int] | None = None) -> Part:
    """Parse one entity (a message or a body part) into a Part tree."""
    if budget is None:
        budget = [MAX_PARTS]
    head, body = split_head_body(text)
    headers = parse_headers(head)
    ctype, params = content_type(headers.get("content-type"))
    budget[0] -= 1
    if ctype.startswith("multipart/") and params.get("boundary") and depth < MAX_DEPTH \
            and budget[0] > 0:
        part = Part(ctype, headers, "")
        for chunk in _split_multipart(body, params["boundary"]):
            if budget[0] <= 0:
                break
            part.children.append(parse_entity(chunk, depth + 1, budget))
        if part.children:
            return part
        ctype = "text/plain"  # no delimiter found: keep the body readable as text
    if ctype in ("message/rfc822", "message/global", "text/rfc822-headers",
                 "message/rfc822-headers") and depth < MAX_DEPTH:
        inner = decode_body(body, headers.get("content-transfer-encoding", ""), None)
        return Part(ctype, headers, inner)
    charset = params.get("charset")
    text_body = decode_body(body, headers.get("content-transfer-encoding", ""),
                            charset if ctype.startswith(("text/", "message/")) else None)
    return Part(ctype, headers, text_body)


def leaves(part: Part):
    """Depth-first leaves of a Part tree."""
    if not part.children:
        yield part
        return
    for child in part.children:
        yield from leaves(child)


def bytes_to_text(raw: bytes) -> str:
    """One char per byte (latin-1) so transfer decoding can recover the bytes,
    with line ends normalised to ``\\n``."""
    text = raw.decode("latin-1")
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text


def fix_8bit(text: str) -> str:
    """Re-read latin-1 text as UTF-8 when it is valid UTF-8 (8bit bodies, raw headers)."""
    if text.isascii():
        return text
    try:
        return text.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text
