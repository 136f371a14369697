"""The CSV files an import keeps (the upload and the report of skipped rows), after an erase.

Both are kept for the operator (what was imported, why rows were skipped). When a
person is erased, every line naming their address goes from both files: the files
are rewritten line by line in bounded memory, each into a temporary file beside it
that then replaces it. A line is matched without regard to ASCII case, on the
address encoded as the file was read (``SubscriberImport.encoding``), so a
Windows-1252 upload is matched too. A CSV record spanning lines (a quoted line
break) loses only its line with the address.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from newsletter.models import SubscriberImport

logger = logging.getLogger(__name__)


def _needle(address: str, encoding: str) -> bytes:
    try:
        return address.lower().encode(encoding or "utf-8")
    except (LookupError, UnicodeEncodeError):
        return address.lower().encode("utf-8")


def _without_lines(path: Path, needle: bytes) -> int:
    """Rewrite ``path`` without the lines containing ``needle``; lines removed."""
    removed = 0
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=".erase-")
    try:
        with open(path, "rb") as source, os.fdopen(handle, "wb") as target:
            for line in source:
                if needle in line.lower():
                    removed += 1
                else:
                    target.write(line)
        if removed:
            os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return removed


def import_files_erase(address: str) -> int:
    """Remove the address from every stored import file and report; lines removed."""
    removed = 0
    for subscriber_import in SubscriberImport.objects.exclude(file="", report="").only(
            "id", "file", "report", "encoding"):
        for stored in (subscriber_import.file, subscriber_import.report):
            if not stored:
                continue
            try:
                path = Path(stored.path)
            except (NotImplementedError, ValueError):
                continue  # a storage without local paths: nothing written here
            if not path.is_file():
                continue
            # The report is written in UTF-8; the upload in its own encoding.
            encoding = ("utf-8" if stored is subscriber_import.report
                        else subscriber_import.encoding)
            removed += _without_lines(path, _needle(address, encoding))
    if removed:
        logger.info("newsletter.import_files.erased", extra={"lines": removed})
    return removed
