"""Before an import runs: the file's encoding, its first rows, and what each column means.

Encoding detection, in order (WHATWG Encoding Standard, "decode" with BOM
sniffing; Python's codecs for the tables):

1. a UTF-8 byte order mark: ``utf-8-sig``;
2. the sample decodes as UTF-8 (a multi-byte sequence cut at the sample's end
   is allowed): ``utf-8`` (pure ASCII is UTF-8 too);
3. bytes 0x80-0x9F all defined in Windows-1252 (curly quotes, the euro sign,
   dashes: what Excel on Windows writes): ``cp1252``;
4. otherwise ``latin-1`` (ISO-8859-1 decodes every byte; for 0xA0-0xFF it is
   the same as Windows-1252, which WHATWG maps the label to anyway).

The editor sees the detected encoding and can choose another one; the
preview is decoded with the chosen one, so a wrong choice shows as wrong text
before anything is written.

Columns are mapped to ``email``, ``name``, ``attribute`` (under a key the
editor may rename) or ``ignore``; the guess uses common header names in
English, German, French and Spanish, and a column whose cells look like
addresses.
"""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass

from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from newsletter.exceptions import ImportFileError

SAMPLE_BYTES = 64 * 1024
PREVIEW_ROWS = 10
ENCODINGS = {
    "": gettext_lazy("Detect automatically"),
    "utf-8": "UTF-8",
    "utf-8-sig": gettext_lazy("UTF-8 with byte order mark"),
    "cp1252": "Windows-1252 (Western European, Excel on Windows)",
    "latin-1": "Latin-1 (ISO-8859-1)",
}
ROLES = ("email", "name", "attribute", "ignore")
EMAIL_HEADERS = {"email", "e-mail", "email address", "e-mail address", "mail", "e-mail-adresse",
                 "emailadresse", "email-adresse", "courriel", "adresse e-mail",
                 "correo", "correo electrónico", "correo electronico"}
NAME_HEADERS = {"name", "full name", "fullname", "first name", "firstname", "first_name",
                "vorname", "prénom", "prenom", "nombre", "nom complet", "vollständiger name"}
_ATTRIBUTE_KEY = re.compile(r"[^A-Za-z0-9_-]+")
_LOOKS_LIKE_ADDRESS = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_CP1252_UNDEFINED = {0x81, 0x8D, 0x8F, 0x90, 0x9D}


def detect_encoding(sample: bytes) -> str:
    if sample.startswith(b"\xef\xbb\xbf"):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
        return "utf-8"
    except UnicodeDecodeError as error:
        if error.start >= len(sample) - 3 and error.reason == "unexpected end of data":
            return "utf-8"
    c1 = {b for b in sample if 0x80 <= b <= 0x9F}
    if c1 and not c1 & _CP1252_UNDEFINED:
        return "cp1252"
    return "latin-1"


def attribute_key(header: str) -> str:
    """A header as an attribute name the audience builder accepts."""
    key = _ATTRIBUTE_KEY.sub("_", header.strip()).strip("_")
    return re.sub(r"_{2,}", "_", key)[:100] or "column"


@dataclass
class Column:
    index: int
    header: str
    role: str
    key: str  # the attribute name, for role "attribute"
    samples: list[str]


@dataclass
class Preview:
    encoding: str
    detected: str
    delimiter: str
    columns: list[Column]
    rows: list[list[str]]


def _guess(columns: list[Column]) -> None:
    lowered = [c.header.strip().lower() for c in columns]
    email = next((i for i, h in enumerate(lowered) if h in EMAIL_HEADERS), None)
    if email is None:  # no known header: the column whose cells look like addresses
        email = next((c.index for c in columns if c.samples and all(
            _LOOKS_LIKE_ADDRESS.match(s.strip()) for s in c.samples if s.strip())
            and any(s.strip() for s in c.samples)), None)
    name = next((i for i, h in enumerate(lowered) if h in NAME_HEADERS and i != email), None)
    for column in columns:
        column.role = ("email" if column.index == email else "name" if column.index == name
                       else "attribute" if column.header.strip() else "ignore")


def preview_read(data: bytes, encoding: str = "") -> Preview:
    """The first rows of a file's start (``data``), decoded and with a guessed mapping."""
    detected = detect_encoding(data[:SAMPLE_BYTES])
    chosen = encoding or detected
    if chosen not in ENCODINGS:
        raise ImportFileError(_("Unknown encoding %(e)s.") % {"e": chosen})
    text = data[:SAMPLE_BYTES].decode(chosen, errors="replace")
    lines = text.splitlines(keepends=True)
    if len(data) > SAMPLE_BYTES and lines:
        lines = lines[:-1]  # the last line may be cut
    if not lines or not lines[0].strip():
        raise ImportFileError(_("The file is empty or its first line is blank; it needs a "
                                "header row."))
    first = lines[0]
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(io.StringIO("".join(lines[:PREVIEW_ROWS + 1]), newline=""),
                        delimiter=delimiter)
    try:
        table = list(reader)
    except csv.Error as error:
        raise ImportFileError(_("The file is not readable as CSV: %(e)s") % {"e": error}) \
            from None
    header, rows = table[0], table[1:]
    columns = [Column(i, h.strip(), "attribute", attribute_key(h),
                      [r[i] for r in rows if len(r) > i]) for i, h in enumerate(header)]
    _guess(columns)
    return Preview(chosen, detected, delimiter, columns, rows)


def column_map_clean(roles: list[str], keys: list[str], headers: list[str]) -> list[str]:
    """The stored mapping: one entry per column, ``email``, ``name``, ``ignore`` or
    ``attribute:<key>``; ImportFileError unless exactly one email column."""
    if len(roles) != len(headers):
        raise ImportFileError(_("Map every column."))
    mapped: list[str] = []
    seen_keys: set[str] = set()
    for index, role in enumerate(roles):
        if role not in ROLES:
            raise ImportFileError(_("Column %(n)d: unknown choice.") % {"n": index + 1})
        if role == "attribute":
            key = attribute_key(keys[index] if index < len(keys) and keys[index].strip()
                                else headers[index])
            if key.lower() in seen_keys:
                raise ImportFileError(_("Two columns become the attribute %(k)s.") % {"k": key})
            seen_keys.add(key.lower())
            mapped.append(f"attribute:{key}")
        else:
            mapped.append(role)
    if mapped.count("email") != 1:
        raise ImportFileError(_("Choose exactly one column as the e-mail address."))
    if mapped.count("name") > 1:
        raise ImportFileError(_("Choose at most one column as the name."))
    return mapped
