"""Starting a mailing over a million confirmed subscribers: ledger build time and memory.

    python -m benchmarks.fanout [--recipients 1000000]

Set-up (not timed): ``--recipients`` confirmed subscriptions in the real
newsletter tables, plus 2% pending ones and 1% of the confirmed addresses
suppressed, all written by SQL. Timed: ``sending.services.mailing_start``
streaming ``(subscription id, address)`` from a server-side cursor and writing
one ``Delivery`` per recipient in chunks (COPY + INSERT ... ON CONFLICT on
PostgreSQL). Reported: ``seconds``, ``peak_rss_mb`` of this process (the one
that builds the ledger), and the row counts. Goal: ≤ 30 s and ≤ 300 MB.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from benchmarks.harness import Bench, peak_rss_mb


def populate(n: int) -> int:
    from django.db import connection
    from django.utils import timezone

    from deliverability.models import Suppression
    from newsletter.models import MailingList, Subscriber, Subscription

    news = MailingList.objects.create(name="Fan-out", slug="fanout",
                                      from_email="news@example.org")
    pending = n // 50
    now = timezone.now()
    sub, subn = Subscriber._meta.db_table, Subscription._meta.db_table
    supp = Suppression._meta.db_table
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            series = "SELECT g AS i FROM generate_series(1, %s) AS g"
        else:
            series = ("WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s "
                      "WHERE i < %s) SELECT i FROM s")
        domains = ["gmail.com", "outlook.com", "yahoo.com", "gmx.de", "web.de", "example.org"]
        case = " ".join(f"WHEN {k} THEN '{d}'" for k, d in enumerate(domains))
        cursor.execute(
            f"INSERT INTO {sub} (email, name, attributes, created_at, updated_at) "
            f"SELECT 'reader' || i || '@' || CASE i %% {len(domains)} {case} END, "
            f"'Reader ' || i, '{{}}', %s, %s FROM ({series}) AS t",
            [now, now, n + pending])
        cursor.execute(
            f"INSERT INTO {subn} (subscriber_id, mailing_list_id, status, created_at, "
            f"confirmed_at) SELECT id, %s, CASE WHEN id %% 51 = 0 THEN 'pending' "
            f"ELSE 'confirmed' END, %s, %s FROM {sub}", [news.id, now, now])
        cursor.execute(
            f"INSERT INTO {supp} (address, reason, detail, source, created_at) "
            f"SELECT email, 'hard_bounce', '', 'bench', %s FROM {sub} WHERE id %% 100 = 7",
            [now])
    return news.id


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--recipients", type=int, default=1_000_000)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    parser.add_argument("--stream", action="store_true",
                        help="feed (id, address) pairs through Python instead of a SQL source")
    args = parser.parse_args()

    with Bench("fanout") as bench:
        from newsletter.models import Subscriber, Subscription
        from sending.models import Delivery
        from sending.services import iter_sql, mailing_create, mailing_start

        started = time.monotonic()
        list_id = populate(args.recipients)
        confirmed = Subscription.objects.filter(status="confirmed").count()
        bench.log(f"set-up: {confirmed} confirmed subscriptions in "
                  f"{time.monotonic() - started:.1f}s")
        mailing = mailing_create(from_email="News <news@example.org>", subject="Hi",
                                 text="Hello {{ subscriber.name }}")
        sql = (f"SELECT s.id, r.email FROM {Subscription._meta.db_table} s "
               f"JOIN {Subscriber._meta.db_table} r ON r.id = s.subscriber_id "
               "WHERE s.mailing_list_id = %s AND s.status = 'confirmed'")
        rss_before = peak_rss_mb()
        profiler = cProfile.Profile() if args.profile else None
        started = time.monotonic()
        if profiler:
            profiler.enable()
        if args.stream:
            count = mailing_start(mailing=mailing, recipients=iter_sql(sql, [list_id]),
                                  dispatch=False,
                                  canary=False)  # whole-ledger figures; see block_storm --canary
        else:
            count = mailing_start(mailing=mailing, source_sql=sql, source_params=[list_id],
                                  dispatch=False,
                                  canary=False)  # whole-ledger figures; see block_storm --canary
        seconds = time.monotonic() - started
        if profiler:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(15)
        bench.log(f"ledger: {count} deliveries in {seconds:.1f}s")
        providers = dict(Delivery.objects.filter(mailing=mailing).values_list("provider")
                         .annotate(n=__import__("django.db.models").db.models.Count("id")))
        bench.report(recipients=confirmed, deliveries=count,
                     skipped_suppressed=confirmed - count, seconds=round(seconds, 2),
                     recipients_per_s=round(count / seconds), peak_rss_mb=peak_rss_mb(),
                     rss_before_mb=rss_before, providers=providers,
                     source="python-stream" if args.stream else "sql")


if __name__ == "__main__":
    main()
