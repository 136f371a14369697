"""Subscriber import speed and memory: python -m benchmarks.import_subscribers --rows 1000000

Generates a CSV (email, name, two attributes; one row in 1,000 invalid and one
in 500 a duplicate), imports it into a fresh list with the real importer
(``newsletter.imports.subscribers_import_csv``: COPY on PostgreSQL, the ORM on
SQLite) and checks the result. As a baseline in the same run it loads the same
file with a bare ``COPY`` into an unindexed table (PostgreSQL only), the floor
no importer that validates and writes three tables can go below.

Targets (issue 3): >= 20,000 rows/s and peak RSS <= 200 MB for 1,000,000 rows
into PostgreSQL. The final line is one JSON object.
"""

from __future__ import annotations

import argparse
import csv
import time

from benchmarks.harness import Bench, peak_rss_mb

CITIES = ["Bern", "Zürich", "Genève", "Basel", "Lugano", "Chur", "Sion", "Thun"]
PLANS = ["free", "pro", "team"]


def generate(path, rows: int) -> dict:
    """Write the CSV in a stream; returns what the import should find."""
    invalid = duplicates = 0
    with open(path, "w", encoding="utf-8", newline="") as stream:
        writer = csv.writer(stream)
        writer.writerow(["email", "name", "city", "plan"])
        for i in range(rows):
            if i % 1000 == 999:
                writer.writerow([f"broken-{i}.example.org", "Broken", "", ""])
                invalid += 1
            elif i % 500 == 499:
                writer.writerow([f"user{i - 1}@Example{(i - 1) % 97}.org", "", "Bern", "pro"])
                duplicates += 1
            else:
                writer.writerow([f"user{i}@Example{i % 97}.org", f"User Nummer {i}",
                                 CITIES[i % len(CITIES)], PLANS[i % len(PLANS)]])
    return {"invalid": invalid, "unique": rows - invalid - duplicates}


def raw_copy_rows_per_s(path, rows: int) -> float | None:
    """Baseline: a bare COPY of the file into an unindexed table (PostgreSQL only)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        return None
    with connection.cursor() as cursor:
        raw = cursor.cursor
        raw.execute("CREATE UNLOGGED TABLE bench_raw (email text, name text, city text, "
                    "plan text)")
        started = time.perf_counter()
        with open(path, "rb") as source, raw.copy(
                "COPY bench_raw FROM STDIN WITH (FORMAT csv, HEADER true)") as copy:
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        seconds = time.perf_counter() - started
        raw.execute("DROP TABLE bench_raw")
    return rows / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=None, help="rows per database batch")
    args = parser.parse_args()

    with Bench("import_subscribers") as bench:
        from newsletter.imports import subscribers_import_csv
        from newsletter.models import MailingList, Subscription

        source = bench.tmp / "subscribers.csv"
        expected = generate(source, args.rows)
        size_mb = source.stat().st_size / 1e6
        bench.log(f"generated {args.rows:,} rows ({size_mb:.0f} MB)")
        baseline = raw_copy_rows_per_s(source, args.rows)
        if baseline:
            bench.log(f"baseline bare COPY: {baseline:,.0f} rows/s")

        mailing_list = MailingList.objects.create(name="Bench", slug="bench")
        last = [0.0]

        def progress(stats):
            if stats.seconds - last[0] >= 5:
                last[0] = stats.seconds
                bench.log(f"{stats.rows_read:,} rows, {stats.rows_read / stats.seconds:,.0f}"
                          f" rows/s, rss {peak_rss_mb()} MB")

        with open(source, "rb") as stream, open(bench.tmp / "report.csv", "w",
                                                 encoding="utf-8", newline="") as report:
            started = time.perf_counter()
            stats = subscribers_import_csv(stream=stream, mailing_list=mailing_list,
                                           mode="confirmed", report_stream=report,
                                           progress=progress, batch_rows=args.batch)
            seconds = time.perf_counter() - started

        imported = Subscription.objects.filter(mailing_list=mailing_list).count()
        if imported != expected["unique"] or stats.rows_invalid != expected["invalid"]:
            raise SystemExit(f"wrong result: {imported} imported (want {expected['unique']}),"
                             f" {stats.rows_invalid} invalid (want {expected['invalid']})")
        rate = args.rows / seconds
        bench.log(f"imported {imported:,} subscriptions in {seconds:.1f}s")
        bench.report(
            rows=args.rows, imported=imported, invalid=stats.rows_invalid,
            duplicates_merged=stats.rows_duplicate + stats.subscriptions_existing,
            seconds=round(seconds, 2), rows_per_s=round(rate),
            peak_rss_mb=peak_rss_mb(),
            baseline_copy_rows_per_s=round(baseline) if baseline else None,
            ratio_to_bare_copy=round(rate / baseline, 3) if baseline else None,
            target_rows_per_s=20_000, target_peak_rss_mb=200,
            meets_target=rate >= 20_000 and peak_rss_mb() <= 200,
        )


if __name__ == "__main__":
    main()
