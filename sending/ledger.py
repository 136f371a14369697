"""The delivery ledger (fan-out): a mailing and one ``Delivery`` row per recipient.

Part of the life of a delivery: ledger (here) -> dispatch -> engine (send loop) ->
outcomes; ``sending.services`` is the public face of all four.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from itertools import islice

from django.db import connection, transaction
from django.utils import timezone

from deliverability.providers import providers_for_domains
from deliverability.suppression import normalise, suppressed_among
from sending import conf as sending_conf
from sending.canary import canary_begin
from sending.models import Delivery, Mailing, RelayPool
from sending.render import compile_template

LEDGER_CHUNK = 20_000


# --------------------------------------------------------------------------- mailings
def mailing_create(*, from_email: str, subject: str, text: str, html: str = "",
                   reply_to: str = "", list_id: str = "", pool: RelayPool | None = None,
                   reference: str = "", max_age_hours: int | None = None) -> Mailing:
    """A draft mailing: a snapshot of the content. Templates are checked here."""
    compile_template(subject)
    compile_template(text)
    if html:
        compile_template(html, html=True)
    for value in (from_email, subject, reply_to, list_id):
        if "\r" in value or "\n" in value:
            raise ValueError("header values must not contain line breaks")
    return Mailing.objects.create(
        reference=reference, pool=pool, from_email=from_email, reply_to=reply_to,
        subject_template=subject, text_template=text, html_template=html, list_id=list_id,
        max_age_hours=max_age_hours or sending_conf.get().max_age_hours,
    )


def mailing_start(*, mailing: Mailing,
                  recipients: Iterable[tuple[int | None, str]] | None = None,
                  source_sql: str | None = None, source_params: Iterable = (),
                  dispatch: bool = True, canary: bool | None = None) -> int:
    """Build the ledger and start sending.

    Recipients come either as ``(subscription_id, address)`` pairs or as a SQL
    query returning those two columns (``source_sql``; on PostgreSQL the rows
    then never leave the server). The caller passes confirmed subscriptions
    only; suppressed addresses are skipped here. Safe to call again: the
    unique (mailing, address) constraint keeps existing rows. Returns the
    number of deliveries of the mailing. ``canary``: send to a first slice and widen
    while it stays clean (``sending.canary``); None: when above CANARY_MIN_RECIPIENTS.
    """
    if (recipients is None) == (source_sql is None):
        raise ValueError("pass either recipients or source_sql")
    Mailing.objects.filter(id=mailing.id, state__in=[Mailing.State.DRAFT,
                                                       Mailing.State.BUILDING]).update(
        state=Mailing.State.BUILDING)
    mailing.refresh_from_db()
    if mailing.state != Mailing.State.BUILDING:
        raise ValueError(f"mailing {mailing.id} is {mailing.state}, not startable")
    if source_sql is not None and connection.vendor == "postgresql":
        ledger_build_sql(mailing, source_sql, list(source_params))
    else:
        ledger_build(mailing, recipients if recipients is not None
                     else iter_sql(source_sql, source_params))
    count = Delivery.objects.filter(mailing=mailing).count()
    canary_begin(mailing, enabled=canary)
    Mailing.objects.filter(id=mailing.id).update(
        state=Mailing.State.SENDING, recipients=count,
        started_at=mailing.started_at or timezone.now())
    mailing.refresh_from_db()
    if dispatch:
        from sending.tasks import mailing_dispatch

        transaction.on_commit(lambda: mailing_dispatch.delay(mailing.id))
    return count


def iter_sql(sql: str, params: Iterable = (), size: int = 10_000) -> Iterator[tuple]:
    """Stream rows of a query with bounded memory (a server-side cursor on PostgreSQL)."""
    with transaction.atomic(), connection.chunked_cursor() as cursor:
        cursor.execute(sql, list(params))
        while rows := cursor.fetchmany(size):
            yield from rows


def _normalise(address: str) -> str:
    local, _, domain = address.strip().rpartition("@")
    if not local or not domain:
        return ""
    return normalise(address)  # config.addresses: the one normalisation


def ledger_build(mailing: Mailing, recipients: Iterable[tuple[int | None, str]]) -> None:
    """Insert deliveries in chunks (bounded memory); PostgreSQL uses COPY."""
    now = timezone.now()
    providers: dict[str, str] = {}
    iterator = iter(recipients)
    postgres = connection.vendor == "postgresql"
    if postgres:
        _pg_stage_create()
    try:
        while chunk := list(islice(iterator, LEDGER_CHUNK)):
            rows = []
            seen = set()
            for subscription_id, address in chunk:
                address = _normalise(address)
                if not address or address in seen:
                    continue
                seen.add(address)
                rows.append((subscription_id, address, address.rpartition("@")[2]))
            unknown = {domain for _, _, domain in rows if domain not in providers}
            if unknown:  # one parallel lookup per new domain (MX rollup, cached)
                providers.update(providers_for_domains(unknown))
            rows = [(sid, address, providers.get(domain, domain))
                    for sid, address, domain in rows]
            if postgres:
                _pg_insert(mailing.id, rows, now)
            else:
                _generic_insert(mailing.id, rows, now)
    finally:
        if postgres:
            with connection.cursor() as cursor:
                cursor.execute("DROP TABLE IF EXISTS pw_ledger_stage")


def ledger_build_sql(mailing: Mailing, source_sql: str, params: list) -> None:
    """PostgreSQL: the whole ledger in SQL (providers looked up once per distinct domain)."""
    from deliverability.models import Suppression

    table = Delivery._meta.db_table
    suppression = Suppression._meta.db_table
    source = (f"SELECT src.sid, split_part(src.addr, '@', 1) || '@' || "  # noqa: S608
              f"lower(split_part(src.addr, '@', 2)) AS address FROM "
              f"(SELECT q.* FROM ({source_sql}) AS q) AS src(sid, addr) "
              "WHERE position('@' in src.addr) > 1")
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT DISTINCT split_part(address, '@', 2) FROM ({source}) AS s",  # noqa: S608
                       params)
        domains = [row[0] for row in cursor.fetchall()]
    providers = providers_for_domains(domains)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL work_mem = '128MB'")  # sort and anti-join in memory
        cursor.execute("CREATE TEMP TABLE pw_ledger_providers (domain text PRIMARY KEY, "
                       "provider text) ON COMMIT DROP")
        with cursor.cursor.copy("COPY pw_ledger_providers (domain, provider) FROM STDIN") as copy:
            for domain in domains:
                copy.write_row((domain, providers.get(domain, domain)))
        cursor.execute(
            f"INSERT INTO {table} (mailing_id, subscription_id, address, provider, state, "  # noqa: S608
            "attempts, next_attempt_at, claimed_by, relay, last_reply, message_id) "
            "SELECT %s, s.sid, s.address, COALESCE(p.provider, ''), 'queued', 0, %s, '', '', "
            f"'', '' FROM ({source}) AS s LEFT JOIN pw_ledger_providers p "
            "ON p.domain = split_part(s.address, '@', 2) "
            f"WHERE NOT EXISTS (SELECT 1 FROM {suppression} x WHERE x.address = s.address) "
            # In address order the unique index grows at its right edge instead of
            # touching random pages: several times faster for a million rows.
            "ORDER BY s.address ON CONFLICT (mailing_id, address) DO NOTHING",
            [mailing.id, timezone.now(), *params])


def _pg_stage_create() -> None:
    with connection.cursor() as cursor:
        cursor.execute("DROP TABLE IF EXISTS pw_ledger_stage")
        cursor.execute("CREATE TEMP TABLE pw_ledger_stage (subscription_id bigint, "
                       "address text, provider text)")


def _pg_insert(mailing_id: int, rows: list, now: datetime) -> None:
    from deliverability.models import Suppression

    table = Delivery._meta.db_table
    suppression = Suppression._meta.db_table
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("TRUNCATE pw_ledger_stage")
        raw = cursor.cursor  # psycopg 3 cursor: COPY
        with raw.copy("COPY pw_ledger_stage (subscription_id, address, provider) "
                      "FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cursor.execute(
            f"INSERT INTO {table} (mailing_id, subscription_id, address, provider, state, "  # noqa: S608
            "attempts, next_attempt_at, claimed_by, relay, last_reply, message_id) "
            "SELECT %s, s.subscription_id, s.address, s.provider, 'queued', 0, %s, '', '', '', '' "
            f"FROM pw_ledger_stage s WHERE NOT EXISTS (SELECT 1 FROM {suppression} x "
            "WHERE x.address = s.address) "
            "ON CONFLICT (mailing_id, address) DO NOTHING", [mailing_id, now])


def _generic_insert(mailing_id: int, rows: list, now: datetime) -> None:
    suppressed = suppressed_among(address for _, address, _ in rows)
    Delivery.objects.bulk_create(
        [Delivery(mailing_id=mailing_id, subscription_id=subscription_id, address=address,
                  provider=provider, next_attempt_at=now)
         for subscription_id, address, provider in rows if address not in suppressed],
        ignore_conflicts=True, batch_size=2000,
    )
