"""Whether the database is set up (for code that can do without it and for manage.py),
and fast many-row writes.

A fresh install has a database with no tables until ``make migrate``. Commands
that need none (``explain_headers``, ``classify_bounce``) read what the database
would add only when its tables are there (``tables_ready``); a command that needs
it and fails on a missing table gets one line from manage.py (``not_migrated``)
instead of a traceback.
"""

from __future__ import annotations

from django.db import DatabaseError, connection, transaction

MIGRATE_HINT = "run make migrate first"
_ready: set[str] = set()  # tables seen; a missing one is asked again (migrate may run meanwhile)


def tables_ready(*models) -> bool:
    """True when every model's table exists (a database that cannot be reached: False)."""
    tables = {model._meta.db_table for model in models}
    if tables <= _ready:
        return True
    try:
        present = set(connection.introspection.table_names())
    except DatabaseError:
        return False
    _ready.update(tables & present)
    return tables <= present


def pending_migrations() -> int | None:
    """Migrations not applied yet; None when the database cannot be asked."""
    from django.db.migrations.executor import MigrationExecutor

    try:
        executor = MigrationExecutor(connection)
        return len(executor.migration_plan(executor.loader.graph.leaf_nodes()))
    except DatabaseError:
        return None


def not_migrated(error: BaseException) -> str | None:
    """The one line for a database error that an unmigrated database explains, else None."""
    if not isinstance(error, DatabaseError) or not pending_migrations():
        return None
    reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return f"the database is not set up ({reason}): {MIGRATE_HINT}"


def update_rows(model, objects: list, fields: list[str]) -> None:
    """What ``QuerySet.bulk_update`` does, as one prepared ``UPDATE ... WHERE pk = %s``
    run for each object (executemany): bulk_update builds a CASE per column and row,
    which costs more than the rest of a batch of signups or mails."""
    if not objects:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    columns = [meta.get_field(name) for name in fields]
    sql = (f"UPDATE {quote(meta.db_table)} SET "  # noqa: S608
           + ", ".join(f"{quote(column.column)} = %s" for column in columns)
           + f" WHERE {quote(meta.pk.column)} = %s")
    rows = [[column.get_db_prep_save(getattr(obj, column.attname), connection)
             for column in columns] + [obj.pk] for obj in objects]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def insert_rows(model, objects: list, *, ignore_conflicts: bool = False) -> None:
    """What ``QuerySet.bulk_create`` does for rows whose ids are not needed back, as one
    prepared INSERT run for each object (executemany): Django compiles every value of
    a bulk insert through its expression machinery, about 10 us a column and row."""
    if not objects:
        return
    from django.db.models.constants import OnConflict

    meta = model._meta
    quote = connection.ops.quote_name
    fields = [f for f in meta.concrete_fields if f is not meta.auto_field]
    conflict = OnConflict.IGNORE if ignore_conflicts else None
    sql = (f"{connection.ops.insert_statement(on_conflict=conflict)} {quote(meta.db_table)} "
           f"({', '.join(quote(f.column) for f in fields)}) "
           f"VALUES ({', '.join(['%s'] * len(fields))}) "
           + connection.ops.on_conflict_suffix_sql(fields, conflict, None, None))
    rows = [[f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
            for obj in objects]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.executemany(sql, rows)
