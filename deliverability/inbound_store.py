"""Storing an inbound message once: compressed, keyed by its sha256, read in chunks.

The raw bytes are what every later decision can be checked against (reclassify,
review, export); they are stored before anything is decided, so a message that
cannot be parsed or processed is still kept.
"""

from __future__ import annotations

import hashlib
import io
import re
import zlib
from collections.abc import Iterable
from email.parser import BytesHeaderParser
from email.policy import compat32
from typing import BinaryIO

from django.db import IntegrityError, connection, transaction

from deliverability.models import InboundMessage

SCAN_BYTES = 1024 * 1024
HEADER_BYTES = 256 * 1024

CHUNK = 64 * 1024


def clean_text(text, limit: int | None = None) -> str:
    """Text the database accepts: no NUL (PostgreSQL), no lone surrogates (UTF-8)."""
    text = str(text or "").encode("utf-8", "replace").decode("utf-8").replace("\x00", "")
    return text[:limit] if limit else text


_HEADER_END = re.compile(rb"\r?\n\r?\n")


def top_headers(raw: bytes):
    """The top-level headers only (the parser is not handed the body at all)."""
    end = _HEADER_END.search(raw, 0, HEADER_BYTES)
    try:
        return BytesHeaderParser(policy=compat32).parsebytes(
            raw[:end.end() if end else HEADER_BYTES])
    except Exception:  # a message we can't parse is still stored
        return None


def header_text(headers, name: str) -> str:
    if headers is None:
        return ""
    try:
        return clean_text(" ".join(str(v) for v in headers.get_all(name, [])))
    except Exception:  # odd header objects are treated as absent
        return ""


def _digest(source: BinaryIO) -> tuple[str, bytearray, bytes, int]:
    """(sha256, compressed bytes, the first SCAN_BYTES, size), read in chunks: a large
    message is never held whole in memory, only compressed, in one growing buffer
    (the database driver takes it as it is: no second copy)."""
    sha, packer = hashlib.sha256(), zlib.compressobj(6)
    packed, head, size = bytearray(), bytearray(), 0
    source.seek(0)
    while chunk := source.read(CHUNK):
        sha.update(chunk)
        packed += packer.compress(chunk)
        if len(head) < SCAN_BYTES:
            head += chunk[:SCAN_BYTES - len(head)]
        size += len(chunk)
    packed += packer.flush()
    return sha.hexdigest(), packed, bytes(head), size


def store(raw: bytes, *, source: str, envelope_recipients: Iterable[str] = ()) -> InboundMessage:
    """Store the message once; the same bytes again return the stored row."""
    return store_file(io.BytesIO(raw), source=source, envelope_recipients=envelope_recipients)


def store_file(stream: BinaryIO, *, source: str,
               envelope_recipients: Iterable[str] = ()) -> InboundMessage:
    key, packed, head, size = _digest(stream)
    found = InboundMessage.objects.defer("raw_compressed").filter(key=key).first()
    if found is not None:
        return found
    headers = top_headers(head)
    try:
        with transaction.atomic():
            message = InboundMessage.objects.create(
                key=key, raw_compressed=b"", size=size, stored_bytes=len(packed),
                source=source, envelope_recipients=clean_text(",".join(envelope_recipients), 10000),
                message_id=header_text(headers, "Message-ID")[:998],
                subject=header_text(headers, "Subject")[:998],
            )
            _raw_write(message.pk, packed)
            message.raw_compressed = packed
    except IntegrityError:  # stored by a concurrent delivery of the same bytes
        return InboundMessage.objects.get(key=key)
    from deliverability.retention import raw_quota_enforce

    raw_quota_enforce()
    return message


def _raw_write(pk: int, packed: bytes) -> None:
    """The compressed bytes as a binary parameter. Django's PostgreSQL cursor binds on the
    client: it spells a bytea out in hex inside the statement, several copies of twice
    the size (a 9 MB message took ~50 MB); a server-side binding cursor on the same
    connection (and transaction) sends the bytes as they are."""
    if connection.vendor != "postgresql":
        InboundMessage.objects.filter(pk=pk).update(raw_compressed=packed)
        return
    import psycopg

    connection.ensure_connection()
    table = connection.ops.quote_name(InboundMessage._meta.db_table)
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(f"UPDATE {table} SET raw_compressed = %b WHERE id = %s",  # noqa: S608
                       [packed, pk])


def raw_head(message: InboundMessage, limit: int) -> bytes:
    """The first ``limit`` bytes of the stored message, decompressing no more than that."""
    data = message.raw_compressed
    if not data:
        return b""
    return zlib.decompressobj().decompress(memoryview(data), limit)
