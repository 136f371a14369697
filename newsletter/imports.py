"""CSV imports and exports of subscribers.

An import streams the file (UTF-8, with or without BOM; comma or semicolon
separated; a header row with an ``email`` column, optionally ``name``, and any
other columns as attributes), checks every row, and writes batches:

- on PostgreSQL through ``COPY`` into a temporary table and one set-based
  statement per batch (upsert subscribers, add subscriptions, append consent
  records), which keeps memory flat and does 10^5 rows/s;
- elsewhere (SQLite) through the ORM in bulk.

A bad row never stops the import: it is written to the report (line number,
address as given, reason) and the rest goes on. Addresses already on the list
keep their status (an unsubscribed person is never re-subscribed by an import),
suppressed addresses are skipped and reported, duplicates are merged (later
rows win for name and attributes).
"""

from __future__ import annotations

import csv
import io
import itertools
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from django.core.files.base import ContentFile
from django.db import connection, connections, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from deliverability.suppression import is_suppressed
from newsletter import conf
from newsletter.exceptions import ImportFileError, InvalidAddress, InvalidInput
from newsletter.import_rows import ImportStats, Report, Row, spreadsheet_safe
from newsletter.import_writers import OrmWriter, PostgresWriter
from newsletter.models import MailingList, SubscriberImport, Subscription
from newsletter.validation import MAX_ATTRIBUTE, address_clean, name_clean, text_clean

logger = logging.getLogger(__name__)
ProgressCallback = Callable[[ImportStats], None]

EMAIL_COLUMNS = {"email", "e-mail", "email address", "e-mail address", "mail"}
NAME_COLUMNS = {"name", "full name"}
MAX_ATTRIBUTES = 50
csv.field_size_limit(1 << 20)


def _has_surrogates(value: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _header(text: io.TextIOBase, column_map: list[str] | None = None,
            encoding: str = "utf-8") -> tuple[csv.reader, list[str], int, int | None]:
    first = text.readline()
    if not first.strip():
        raise ImportFileError(_("The file is empty or its first line is blank; it needs a "
                                "header row with an 'email' column."))
    if _has_surrogates(first):
        raise ImportFileError(_("The header row is not valid %(encoding)s. Choose the file's "
                                "encoding (e.g. Windows-1252) or save it as UTF-8.")
                              % {"encoding": _encoding_label(encoding)})
    delimiter = ";" if first.count(";") > first.count(",") else ","
    reader = csv.reader(itertools.chain([first], text), delimiter=delimiter)
    header = [h.strip() for h in next(reader)]
    if column_map:
        if len(column_map) != len(header):
            raise ImportFileError(_("The column mapping has %(m)d columns, the file %(f)d.")
                                  % {"m": len(column_map), "f": len(header)})
        email_index = column_map.index("email")
        name_index = column_map.index("name") if "name" in column_map else None
        return reader, header, email_index, name_index
    lowered = [h.lower() for h in header]
    email_index = next((i for i, h in enumerate(lowered) if h in EMAIL_COLUMNS), None)
    if email_index is None:
        raise ImportFileError(_("No 'email' column in the header row (found: %(cols)s).")
                              % {"cols": ", ".join(header[:20]) or "-"})
    name_index = next((i for i, h in enumerate(lowered) if h in NAME_COLUMNS), None)
    named = [h for h in lowered if h]
    if len(named) != len(set(named)):
        raise ImportFileError(_("The header row names a column twice."))
    if len(header) - 2 > MAX_ATTRIBUTES:
        raise ImportFileError(_("Too many columns (at most %(n)d attributes).")
                              % {"n": MAX_ATTRIBUTES})
    return reader, header, email_index, name_index


def _encoding_label(encoding: str) -> str:
    from newsletter.import_preview import ENCODINGS

    return {"utf-8-sig": "UTF-8"}.get(encoding, str(ENCODINGS.get(encoding, encoding)))


def _encoding_of(stream: BinaryIO, encoding: str) -> tuple[BinaryIO, str]:
    """The encoding to read with (detected from the start when not given)."""
    from newsletter.import_preview import SAMPLE_BYTES, detect_encoding

    if encoding:
        return stream, encoding
    if stream.seekable():
        start = stream.tell()
        sample = stream.read(SAMPLE_BYTES)
        stream.seek(start)
        return stream, detect_encoding(sample)
    buffered = io.BufferedReader(stream, buffer_size=SAMPLE_BYTES)  # type: ignore[arg-type]
    return buffered, detect_encoding(buffered.peek(SAMPLE_BYTES)[:SAMPLE_BYTES])


def parse_rows(stream: BinaryIO, report: Report, stats: ImportStats, *, encoding: str = "",
               column_map: list[str] | None = None) -> Iterator[Row]:
    """Valid rows of the CSV; invalid ones go to the report.

    ``encoding`` empty: detected (``import_preview.detect_encoding``). ``column_map``
    (one of email, name, ignore, attribute:<key> per column) replaces the guess by
    header names.
    """
    stream, encoding = _encoding_of(stream, encoding)
    utf8 = encoding.replace("_", "-").lower() in ("utf-8", "utf-8-sig", "utf8")
    # surrogateescape: an undecodable byte marks its row as bad instead of ending the file.
    text = io.TextIOWrapper(stream, encoding="utf-8-sig" if utf8 else encoding,
                            errors="surrogateescape", newline="")
    reader, header, email_index, name_index = _header(text, column_map, encoding)
    not_decodable = _("not valid %(encoding)s") % {"encoding": _encoding_label(encoding)}
    width = len(header)
    if column_map:
        attribute_columns = [(i, role.partition(":")[2]) for i, role in enumerate(column_map)
                             if role.startswith("attribute:")]
    else:
        attribute_columns = [(i, h) for i, h in enumerate(header)
                             if h and i not in (email_index, name_index)]
    rows = iter(reader)
    while True:
        try:
            fields = next(rows)
        except StopIteration:
            return
        except csv.Error as exc:
            stats.rows_read += 1
            stats.rows_invalid += 1
            report.add(reader.line_num, "", _("unreadable CSV: %(e)s") % {"e": exc})
            continue
        line = reader.line_num
        if not fields or (len(fields) == 1 and not fields[0].strip()):
            continue  # blank line
        stats.rows_read += 1
        email = fields[email_index] if len(fields) > email_index else ""
        try:
            if len(fields) != width:
                raise InvalidInput(_("%(got)d fields where the header has %(want)d")
                                   % {"got": len(fields), "want": width})
            joined = "".join(fields)
            if not joined.isprintable():  # rare: look closer (fast path otherwise)
                if _has_surrogates(joined):
                    raise InvalidInput(not_decodable)
                if "\x00" in joined:
                    raise InvalidInput(_("contains a NUL character"))
            address = address_clean(email)
            name = name_clean(fields[name_index]) if name_index is not None else ""
            attributes = {}
            for index, key in attribute_columns:
                value = fields[index]
                if value:
                    attributes[key] = (value if len(value) <= MAX_ATTRIBUTE
                                       and value.isprintable() and value == value.strip()
                                       else text_clean(value, max_length=MAX_ATTRIBUTE,
                                                       what=key))
        except (InvalidAddress, InvalidInput) as exc:
            stats.rows_invalid += 1
            report.add(line, email, str(exc))
            continue
        yield Row(line, address, name, attributes)


def _batches(rows: Iterator[Row], size: int, stats: ImportStats,
             parts: int = 1) -> Iterator[tuple[int, dict[str, Row]]]:
    """(part, batch) pairs; a batch maps addresses to rows, duplicates merged (later wins).

    With several parts an address always lands in the same part, so the writer of
    that part sees all its rows in file order: later rows win across batches too.
    """
    open_batches: list[dict[str, Row]] = [{} for _ in range(parts)]
    for row in rows:
        part = hash(row.email) % parts if parts > 1 else 0
        batch = open_batches[part]
        seen = batch.get(row.email)
        if seen is not None:
            stats.rows_duplicate += 1
            if row.name:
                seen.name = row.name
            seen.attributes.update(row.attributes)
            continue
        batch[row.email] = row
        if len(batch) >= size:
            yield part, batch
            open_batches[part] = {}
    for part, batch in enumerate(open_batches):
        if batch:
            yield part, batch


def _position(stream: BinaryIO) -> int:
    try:
        return stream.tell()
    except (OSError, ValueError):
        return 0


def _write_inline(rows, size, writer, report, stats, stream, after_batch) -> None:
    for _part, batch in _batches(rows, size, stats):
        writer.write(batch, report, stats)
        after_batch(_position(stream))


def _write_pipelined(rows, size, writer, report, stats, stream, after_batch) -> None:
    """Parse on this thread, write on others: parsing and writing overlap.

    Addresses are split into as many parts as there are writer threads (each with
    its own connection and transactions), so no two writers ever touch the same
    subscriber, and each writer applies an address' rows in file order.
    """
    parts = conf.IMPORT_WRITERS
    queues: list[queue.Queue] = [queue.Queue(maxsize=1) for _ in range(parts)]
    failure: list[BaseException] = []

    def work(inbox: queue.Queue) -> None:
        try:
            while (item := inbox.get()) is not None:
                if failure:
                    continue  # keep taking batches so the parser never blocks
                batch, position = item
                try:
                    _write_retrying(writer, batch, report, stats)
                    after_batch(position)
                except BaseException as exc:
                    failure.append(exc)
        finally:
            connections.close_all()  # this thread's connection

    threads = [threading.Thread(target=work, args=(inbox,), name=f"import-writer-{i}",
                                daemon=True) for i, inbox in enumerate(queues)]
    for thread in threads:
        thread.start()
    try:
        for part, batch in _batches(rows, max(100, size // parts), stats, parts):
            if failure:
                break
            queues[part].put((batch, _position(stream)))
    finally:
        for inbox in queues:
            inbox.put(None)
        for thread in threads:
            thread.join()
    if failure:
        raise failure[0]


def _write_retrying(writer, batch, report, stats, attempts: int = 3) -> None:
    from django.db import OperationalError

    for attempt in range(attempts):
        try:
            return writer.write(batch, report, stats)
        except OperationalError as exc:  # deadlock or serialization failure: try again
            if attempt == attempts - 1 or "deadlock" not in str(exc).lower():
                raise
            logger.warning("newsletter.import.retry", extra={"attempt": attempt + 1})
    return None


def subscribers_import_csv(
    *, stream: BinaryIO, mailing_list: MailingList, mode: str,
    report_stream: io.TextIOBase | None = None, subscriber_import: SubscriberImport | None = None,
    progress: ProgressCallback | None = None, batch_rows: int | None = None,
    bytes_total: int = 0, engine: str = "auto", encoding: str = "",
    column_map: list[str] | None = None,
) -> ImportStats:
    """Import a CSV stream into a list; returns the figures. See the module docstring.

    Raises ``ImportFileError`` when the file as a whole is unusable (nothing
    is imported then). ``engine`` is ``auto``, ``copy`` (PostgreSQL) or ``orm``.
    """
    from newsletter.services.consent import consent_text_current

    if mode not in SubscriberImport.Mode.values:
        raise ValueError(f"unknown import mode {mode!r}")
    started = time.monotonic()
    stats = ImportStats(bytes_total=bytes_total)
    report = Report(report_stream)
    if engine == "auto":
        engine = "copy" if connection.vendor == "postgresql" else "orm"
    consent_text_id = (None if mode == SubscriberImport.Mode.CONFIRMED
                       else consent_text_current(mailing_list).id)
    writer_class = PostgresWriter if engine == "copy" else OrmWriter
    writer = writer_class(mailing_list, mode, subscriber_import.id if subscriber_import else None,
                          consent_text_id)
    rows = parse_rows(stream, report, stats, encoding=encoding, column_map=column_map)

    def after_batch(bytes_done: int) -> None:
        stats.bytes_done = bytes_done
        stats.seconds = time.monotonic() - started
        if progress:
            progress(stats)

    # Outside a transaction, PostgreSQL writes batch N on its own thread (and connection)
    # while this one parses batch N+1; inside one (tests), everything stays on this thread.
    pipelined = engine == "copy" and not connection.in_atomic_block
    (_write_pipelined if pipelined else _write_inline)(
        rows, batch_rows or conf.IMPORT_BATCH_ROWS, writer, report, stats, stream, after_batch)
    stats.bytes_done = stats.bytes_total or stats.bytes_done
    stats.seconds = time.monotonic() - started
    stats.report_lines = report.lines
    if progress:
        progress(stats)
    return stats


# --- an import as a recorded job (admin upload, command) ----------------------------

def _save_progress(subscriber_import: SubscriberImport, stats: ImportStats) -> None:
    SubscriberImport.objects.filter(id=subscriber_import.id).update(
        bytes_done=stats.bytes_done, rows_read=stats.rows_read,
        rows_invalid=stats.rows_invalid, rows_duplicate=stats.rows_duplicate,
        rows_suppressed=stats.rows_suppressed, subscribers_created=stats.subscribers_created,
        subscriptions_created=stats.subscriptions_created,
        subscriptions_existing=stats.subscriptions_existing)


def subscriber_import_run(*, import_id: int, path: Path | None = None,
                          progress: ProgressCallback | None = None) -> SubscriberImport | None:
    """Run a queued import once (a redelivered task finds it claimed and does nothing)."""
    claimed = SubscriberImport.objects.filter(
        id=import_id, state=SubscriberImport.State.QUEUED).update(
        state=SubscriberImport.State.RUNNING, started_at=timezone.now())
    if not claimed:
        return None
    job = SubscriberImport.objects.select_related("mailing_list").get(id=import_id)
    report_buffer = io.StringIO()

    def on_progress(stats: ImportStats) -> None:
        _save_progress(job, stats)
        if progress:
            progress(stats)

    try:
        source = open(path, "rb") if path else job.file.open("rb")
        with source:
            size = path.stat().st_size if path else job.file.size
            SubscriberImport.objects.filter(id=job.id).update(bytes_total=size)
            stats = subscribers_import_csv(
                stream=source, mailing_list=job.mailing_list, mode=job.mode,
                report_stream=report_buffer, subscriber_import=job, progress=on_progress,
                bytes_total=size, encoding=job.encoding, column_map=job.column_map or None)
    except ImportFileError as exc:
        job.state, job.error = SubscriberImport.State.FAILED, str(exc)
    except Exception as exc:
        logger.exception("newsletter.import.failed", extra={"import_id": job.id})
        job.state, job.error = SubscriberImport.State.FAILED, f"{type(exc).__name__}: {exc}"
    else:
        job.state = SubscriberImport.State.DONE
        job.skip_reasons = report_reasons(report_buffer.getvalue())
        if stats.report_lines:
            job.report.save(f"import-{job.id}-report.csv",
                            ContentFile(report_buffer.getvalue().encode("utf-8")), save=False)
    job.refresh_from_db(fields=[
        "bytes_total", "bytes_done", "rows_read", "rows_invalid", "rows_duplicate",
        "rows_suppressed", "subscribers_created", "subscriptions_created",
        "subscriptions_existing"])
    job.finished_at = timezone.now()
    job.save()
    done = job.state == SubscriberImport.State.DONE
    if done and job.mode == SubscriberImport.Mode.REQUEST_OPT_IN:
        from newsletter.tasks import subscriber_import_request_opt_in

        transaction.on_commit(lambda: subscriber_import_request_opt_in.delay(job.id))
    return job


def report_reasons(report_csv: str, limit: int = 5) -> list[list]:
    """The commonest reasons rows were skipped: [[reason, count, first line], ...]."""
    counts: dict[str, list] = {}
    for row in itertools.islice(csv.reader(io.StringIO(report_csv)), 1, None):
        if len(row) >= 3:
            entry = counts.setdefault(row[2], [row[2], 0, int(row[0] or 0)])
            entry[1] += 1
    return sorted(counts.values(), key=lambda e: -e[1])[:limit]


def subscriber_import_request_opt_in(*, import_id: int, batch: int = 500) -> int:
    """Mail an opt-in request to every still-pending row of an import (once each)."""
    from newsletter.services.signup import confirmation_mail_send

    sent = 0
    pending = Subscription.objects.filter(
        subscriber_import_id=import_id, status=Subscription.Status.PENDING,
        requested_at__isnull=True).select_related("subscriber", "mailing_list")
    while True:
        rows = list(pending.order_by("id")[:batch])
        if not rows:
            return sent
        for subscription in rows:
            with transaction.atomic():
                claimed = Subscription.objects.filter(
                    id=subscription.id, requested_at__isnull=True).update(
                    requested_at=timezone.now())
                if claimed and not is_suppressed(subscription.subscriber.email):
                    sent += confirmation_mail_send(subscription)


# --- export ---------------------------------------------------------------------------

EXPORT_COLUMNS = ["email", "name", "status", "subscribed_at", "confirmed_at", "unsubscribed_at"]


def subscribers_export_csv(*, mailing_list: MailingList,
                           statuses: list[str] | None = None) -> Iterator[str]:
    """CSV lines (header first) of a list's subscriptions, streamed in bounded memory.

    The columns are those an import reads back, plus every attribute key.
    """
    subscriptions = Subscription.objects.filter(mailing_list=mailing_list)
    if statuses:
        subscriptions = subscriptions.filter(status__in=statuses)
    keys: dict[str, None] = {}
    for attributes in subscriptions.values_list("subscriber__attributes", flat=True).iterator(
            chunk_size=5000):
        for key in attributes or {}:
            keys.setdefault(key, None)
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def emit(values) -> str:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(values)
        return buffer.getvalue()

    yield emit(EXPORT_COLUMNS + list(keys))
    rows = subscriptions.order_by("id").values_list(
        "subscriber__email", "subscriber__name", "status", "created_at", "confirmed_at",
        "unsubscribed_at", "subscriber__attributes")
    for email, name, status, created, confirmed, unsubscribed, attributes in rows.iterator(
            chunk_size=5000):
        attributes = attributes or {}
        # The address is written as is, so an export imports back unchanged.
        yield emit([email, spreadsheet_safe(name), status,
                    created.isoformat() if created else "",
                    confirmed.isoformat() if confirmed else "",
                    unsubscribed.isoformat() if unsubscribed else "",
                    *(spreadsheet_safe(str(attributes.get(k, ""))) for k in keys)])
