"""What an import counts and reports: the figures, one row, the report of skipped rows."""

from __future__ import annotations

import csv
import io
import threading
from dataclasses import asdict, dataclass, field


@dataclass
class ImportStats:
    rows_read: int = 0
    rows_invalid: int = 0
    rows_duplicate: int = 0
    rows_suppressed: int = 0
    subscribers_created: int = 0
    subscriptions_created: int = 0
    subscriptions_existing: int = 0
    bytes_done: int = 0
    bytes_total: int = 0
    seconds: float = 0.0
    report_lines: int = 0
    created_subscription_ids: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        data = asdict(self)
        data.pop("created_subscription_ids")
        return data


@dataclass
class Row:
    line: int
    email: str
    name: str
    attributes: dict


def spreadsheet_safe(value: str) -> str:
    """Keep a cell from being run as a formula when the CSV is opened in a spreadsheet."""
    value = value.encode("utf-8", "replace").decode("utf-8")
    return "'" + value if value[:1] in ("=", "+", "-", "@", "\t", "\r") else value


class Report:
    """The rows that were not imported: line, email as given, reason."""

    def __init__(self, stream: io.TextIOBase | None):
        self.writer = csv.writer(stream) if stream is not None else None
        self.lines = 0
        self.lock = threading.Lock()  # the parser and the database writer both report
        if self.writer:
            self.writer.writerow(["line", "email", "reason"])

    def add(self, line: int, email: str, reason: str) -> None:
        with self.lock:
            self.lines += 1
            if self.writer:
                self.writer.writerow([line, spreadsheet_safe(email[:320]), reason])
