"""Outcomes: the SMTP answers of a batch written back to its deliveries in bulk."""

from __future__ import annotations

from datetime import UTC, datetime

from django.db import connection, transaction

from sending.models import Delivery, DeliveryAttempt

# --------------------------------------------------------------------------- outcomes
_OUTCOME_SET = (
    "SET state = v.st, last_code = COALESCE(v.code, {t}.last_code), last_reply = v.txt, "
    "relay = CASE WHEN v.relay = '' THEN {t}.relay ELSE v.relay END, "
    "sent_at = CASE WHEN v.st = 'sent' THEN v.at ELSE {t}.sent_at END, "
    "next_attempt_at = COALESCE(v.nx, {t}.next_attempt_at), "
    "message_id = CASE WHEN v.mid = '' THEN {t}.message_id ELSE v.mid END, "
    "attempts = {t}.attempts + v.att, claimed_by = v.by, dispatched_at = v.dsp "
)
_OUTCOME_COLUMNS = "(id, st, code, txt, relay, at, nx, mid, att, by, dsp)"
_PG_TYPES = ("bigint", "varchar", "int", "text", "varchar", "timestamptz", "timestamptz",
             "varchar", "int", "varchar", "timestamptz")


def _when(unix: float | None) -> datetime | None:
    return datetime.fromtimestamp(unix, UTC) if unix else None


def _apply_outcomes(token: str, outcomes: list[dict]) -> None:
    """Write answers (and releases) to rows this token still holds, in one statement."""
    if not outcomes:
        return
    table = Delivery._meta.db_table
    rows = [(o["id"], o["st"], o.get("code"), o.get("text", ""), o.get("relay", ""),
             _when(o["at"]), _when(o.get("nx")), o.get("mid", ""), o.get("att", 0),
             o.get("by", token), _when(o.get("dsp"))) for o in outcomes]
    attempts = [(o["id"], _when(o["at"]), o.get("relay", ""), o.get("code"), o.get("enh", ""),
                 o.get("text", ""), o.get("kind", ""), o["st"]) for o in outcomes if o.get("att")]
    attempt_table = DeliveryAttempt._meta.db_table
    attempt_columns = "(delivery_id, at, relay, code, enhanced_code, text, kind, outcome)"
    where = (f"WHERE {table}.id = v.id AND {table}.claimed_by = %s "
             f"AND {table}.state = 'claimed'")
    pg = connection.vendor == "postgresql"
    if pg:
        # One array a column: a statement of a dozen parameters whatever the batch size.
        source = "unnest(" + ", ".join(f"%b::{t}[]" for t in _PG_TYPES) + ")"
        update = (f"UPDATE {table} " + _OUTCOME_SET.format(t=table)
                  + f"FROM {source} AS v{_OUTCOME_COLUMNS} " + where)
        update_params = [*map(list, zip(*rows, strict=True)), token]
        insert = (f"INSERT INTO {attempt_table} {attempt_columns} "  # noqa: S608
                  "SELECT * FROM unnest(%b::bigint[], %b::timestamptz[], %b::varchar[], "
                  "%b::int[], %b::varchar[], %b::text[], %b::varchar[], %b::varchar[])")
        insert_params = [list(column) for column in zip(*attempts, strict=True)]
    else:
        ops = connection.ops
        adapt = ops.adapt_datetimefield_value
        rows = [(*r[:5], adapt(r[5]), adapt(r[6]), *r[7:10], adapt(r[10])) for r in rows]
        values = ", ".join(["(" + ", ".join(["%s"] * 11) + ")"] * len(rows))
        update = (f"WITH v{_OUTCOME_COLUMNS} AS (VALUES {values}) "
                  f"UPDATE {table} " + _OUTCOME_SET.format(t=table) + "FROM v " + where)
        update_params = [*(x for r in rows for x in r), token]
        insert = (f"INSERT INTO {attempt_table} {attempt_columns} VALUES "  # noqa: S608
                  + ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(attempts)))
        insert_params = [x for a in attempts for x in (a[0], adapt(a[1]), *a[2:])]
    with transaction.atomic(), _cursor(pg) as cursor:
        cursor.execute(update, update_params)
        if attempts:
            cursor.execute(insert, insert_params)


def _cursor(pg: bool):
    """Django's cursor; on PostgreSQL a server-side binding one on the same connection,
    so binary arrays travel as parameters (Django's client-side cursor quotes every
    element into the statement text)."""
    if not pg:
        return connection.cursor()
    import psycopg

    connection.ensure_connection()
    return psycopg.Cursor(connection.connection)
