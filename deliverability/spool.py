"""Reading an inbound message with a size limit checked while it is read.

Used by the pipe (``ingest_bounce``) and the IMAP poller; the SMTP listener
does the same in its DATA reader. Small messages stay in memory, larger ones
go to a temporary file, and nothing past the limit is ever kept.
"""

from __future__ import annotations

import tempfile
from typing import BinaryIO

CHUNK = 64 * 1024


class TooLarge(ValueError):
    """The message is larger than the limit: refused, nothing stored."""

    def __init__(self, limit: int):
        super().__init__(f"message larger than {limit} bytes (BOUNCE_MAX_BYTES): refused")
        self.limit = limit


def read_limited(source: BinaryIO, *, limit: int, spool_bytes: int) -> BinaryIO:
    """A spooled copy of ``source``; raises TooLarge as soon as it passes ``limit``."""
    spool = tempfile.SpooledTemporaryFile(max_size=spool_bytes)
    size = 0
    while chunk := source.read(CHUNK):
        size += len(chunk)
        if size > limit:
            spool.close()
            raise TooLarge(limit)
        spool.write(chunk)
    spool.seek(0)
    return spool
