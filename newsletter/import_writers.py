"""Writing a batch of imported rows: COPY and set-based SQL on PostgreSQL, the ORM elsewhere.

Both take the same batch (address -> ``Row``) and keep the same rules: suppressed
addresses are skipped and reported, existing subscriptions keep their status, every
new subscription gets its consent record.
"""

from __future__ import annotations

import itertools
import json
import threading

from django.db import connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from deliverability.models import Suppression
from deliverability.suppression import suppressed_among
from newsletter.import_rows import ImportStats, Report, Row
from newsletter.models import ConsentRecord, MailingList, Subscriber, SubscriberImport, Subscription


class Writer:
    def __init__(self, mailing_list: MailingList, mode: str, import_id: int | None,
                 consent_text_id: int | None):
        self.lock = threading.Lock()  # writer threads add to the same figures
        self.mailing_list = mailing_list
        self.confirmed = mode == SubscriberImport.Mode.CONFIRMED
        self.import_id = import_id
        self.consent_text_id = consent_text_id
        self.status = (Subscription.Status.CONFIRMED if self.confirmed
                       else Subscription.Status.PENDING)


class PostgresWriter(Writer):
    """COPY into a temporary table, then one statement for the whole batch."""

    def write(self, batch: dict[str, Row], report: Report, stats: ImportStats) -> None:
        sub_t = Subscriber._meta.db_table
        subscription_t = Subscription._meta.db_table
        record_t = ConsentRecord._meta.db_table
        suppression_t = Suppression._meta.db_table
        with transaction.atomic(), connection.cursor() as cursor:
            raw = cursor.cursor
            raw.execute("CREATE TEMP TABLE nl_import_stage (line integer, email text, "
                        "name text, attributes jsonb) ON COMMIT DROP")
            with raw.copy("COPY nl_import_stage (line, email, name, attributes) "
                          "FROM STDIN") as copy:
                for row in batch.values():
                    copy.write_row((row.line, row.email, row.name,
                                    json.dumps(row.attributes, ensure_ascii=False)))
            raw.execute(f"DELETE FROM nl_import_stage s USING {suppression_t} x "  # noqa: S608
                        "WHERE x.address = s.email RETURNING s.line, s.email")
            for line, email in raw.fetchall():
                with self.lock:
                    stats.rows_suppressed += 1
                report.add(line, email, _("suppressed address, not imported"))
            now = timezone.now()
            # The CTEs below carry no statistics; a nested loop over two of them would
            # be quadratic in the batch size. Hash joins keep it linear.
            raw.execute("SET LOCAL enable_nestloop = off")
            # A crash loses at most the last batches' commits, never consistency, and a
            # rerun of the import is idempotent: no need to wait for each WAL flush.
            raw.execute("SET LOCAL synchronous_commit = off")
            raw.execute("SET LOCAL jit = off")  # compiling costs more than it saves here
            raw.execute(f"""
                WITH upserted AS (
                    INSERT INTO {sub_t} AS t (email, name, attributes, created_at, updated_at)
                    SELECT email, name, attributes, %(now)s, %(now)s FROM nl_import_stage
                    ORDER BY email
                    ON CONFLICT (email) DO UPDATE SET
                        name = CASE WHEN EXCLUDED.name <> '' THEN EXCLUDED.name ELSE t.name END,
                        attributes = t.attributes || EXCLUDED.attributes,
                        updated_at = EXCLUDED.updated_at
                    RETURNING t.id, t.email, (t.xmax = 0) AS inserted
                ), added_new AS (
                    -- a subscriber created just now has no subscription: a plain insert
                    INSERT INTO {subscription_t} (subscriber_id, mailing_list_id, status,
                        created_at, confirmed_at, unsubscribed_at, requested_at,
                        subscriber_import_id)
                    SELECT id, %(list)s, %(status)s, %(now)s, %(confirmed_at)s, NULL, NULL,
                        %(import)s FROM upserted WHERE inserted ORDER BY id
                    RETURNING id, subscriber_id
                ), added_old AS (
                    INSERT INTO {subscription_t} (subscriber_id, mailing_list_id, status,
                        created_at, confirmed_at, unsubscribed_at, requested_at,
                        subscriber_import_id)
                    SELECT id, %(list)s, %(status)s, %(now)s, %(confirmed_at)s, NULL, NULL,
                        %(import)s FROM upserted WHERE NOT inserted ORDER BY id
                    ON CONFLICT (subscriber_id, mailing_list_id) DO NOTHING
                    RETURNING id, subscriber_id
                ), added AS (
                    SELECT id, subscriber_id FROM added_new
                    UNION ALL SELECT id, subscriber_id FROM added_old
                ), recorded AS (
                    INSERT INTO {record_t} (event, source, created_at, subscription_id,
                        mailing_list_id, list_slug, address, address_sha256, ip, user_agent,
                        consent_text_id, subscriber_import_id, detail)
                    SELECT 'import', 'import', %(now)s, a.id, %(list)s, %(slug)s, u.email,
                        encode(sha256(convert_to(u.email, 'UTF8')), 'hex'), NULL, '',
                        %(consent_text)s, %(import)s, %(detail)s
                    FROM added a JOIN upserted u ON u.id = a.subscriber_id
                    RETURNING 1
                )
                SELECT (SELECT count(*) FROM upserted WHERE inserted),
                       (SELECT count(*) FROM added),
                       (SELECT count(*) FROM upserted),
                       (SELECT count(*) FROM recorded)
            """, {"now": now, "list": self.mailing_list.id, "status": self.status,  # noqa: S608
                  "confirmed_at": now if self.confirmed else None, "import": self.import_id,
                  "slug": self.mailing_list.slug, "consent_text": self.consent_text_id,
                  "detail": "" if self.confirmed else "opt-in requested"})
            created, added, upserted, _recorded = raw.fetchone()
            # Inside an outer transaction ON COMMIT would come too late for the next batch.
            raw.execute("DROP TABLE nl_import_stage")
        with self.lock:
            stats.subscribers_created += created
            stats.subscriptions_created += added
            stats.subscriptions_existing += upserted - added


class OrmWriter(Writer):
    """Portable path (SQLite): bulk ORM statements in chunks the database accepts."""

    chunk = 500

    def write(self, batch: dict[str, Row], report: Report, stats: ImportStats) -> None:
        addresses = list(batch)
        for address in sorted(suppressed_among(addresses), key=lambda a: batch[a].line):
            row = batch.pop(address)
            stats.rows_suppressed += 1
            report.add(row.line, row.email, _("suppressed address, not imported"))
        now = timezone.now()
        for start in range(0, len(batch), self.chunk):
            rows = dict(itertools.islice(batch.items(), start, start + self.chunk))
            with transaction.atomic():
                self._write_chunk(rows, now, stats)

    def _write_chunk(self, rows: dict[str, Row], now, stats: ImportStats) -> None:
        existing = {s.email: s for s in Subscriber.objects.filter(email__in=list(rows))}
        changed = []
        for address, subscriber in existing.items():
            row = rows[address]
            if row.name:
                subscriber.name = row.name
            subscriber.attributes = {**subscriber.attributes, **row.attributes}
            subscriber.updated_at = now
            changed.append(subscriber)
        Subscriber.objects.bulk_update(changed, ["name", "attributes", "updated_at"])
        new = [Subscriber(email=a, name=r.name, attributes=r.attributes)
               for a, r in rows.items() if a not in existing]
        Subscriber.objects.bulk_create(new, ignore_conflicts=True)
        stats.subscribers_created += len(new)
        ids = dict(Subscriber.objects.filter(email__in=list(rows)).values_list("id", "email"))
        on_list = set(Subscription.objects.filter(
            mailing_list=self.mailing_list, subscriber_id__in=list(ids))
            .values_list("subscriber_id", flat=True))
        stats.subscriptions_existing += len(on_list)
        Subscription.objects.bulk_create([
            Subscription(subscriber_id=i, mailing_list=self.mailing_list, status=self.status,
                         confirmed_at=now if self.confirmed else None,
                         subscriber_import_id=self.import_id)
            for i in ids if i not in on_list], ignore_conflicts=True)
        added = Subscription.objects.filter(
            mailing_list=self.mailing_list, subscriber_id__in=[i for i in ids if i not in on_list])
        records = []
        for subscription_id, subscriber_id in added.values_list("id", "subscriber_id"):
            address = ids[subscriber_id]
            records.append(ConsentRecord(
                event=ConsentRecord.Event.IMPORT, source=ConsentRecord.Source.IMPORT,
                subscription_id=subscription_id, mailing_list=self.mailing_list,
                list_slug=self.mailing_list.slug, address=address,
                address_sha256=ConsentRecord.hash_address(address),
                consent_text_id=self.consent_text_id, subscriber_import_id=self.import_id,
                detail="" if self.confirmed else "opt-in requested"))
        ConsentRecord.objects.bulk_create(records)
        stats.subscriptions_created += len(records)
