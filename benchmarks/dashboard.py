"""The admin home's figures at size: python -m benchmarks.dashboard --subscribers 100000

Fills one list with ``--subscribers`` people (90 % confirmed, 5 % unsubscribed,
5 % pending, confirmations spread over a year), four small lists and 50
campaigns, then times, median of ``--repeat`` runs each:

- ``list_figures`` (config.dashboard: confirmed, joined and left in 7 and 30 days,
  one grouped query) against, as the baseline in the same run, the bare
  ``COUNT`` of the big list's confirmed people the stock changelist would run;
- ``recent_campaigns`` (two queries);
- the whole ``/admin/`` page as an editor, through Django's test client.

Target (issue 21): the home page stays under 250 ms at 100 000 subscribers on
the 2-core development machine, and ``list_figures`` within 10 x the bare count
(one pass over the rows, no per-list or per-row queries). Final line: JSON.
"""

from __future__ import annotations

import argparse
import statistics
import time
from datetime import timedelta

from benchmarks.harness import Bench

BATCH = 5000


def _median_ms(func, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        times.append(time.perf_counter() - start)
    return round(1000 * statistics.median(times), 2)


def fill(subscribers: int) -> None:
    from django.utils import timezone

    from newsletter.models import Campaign, MailingList, Subscriber, Subscription

    now = timezone.now()
    big = MailingList.objects.create(name="Big", slug="big")
    for index in range(4):
        MailingList.objects.create(name=f"Small {index}", slug=f"small-{index}")
    for start in range(0, subscribers, BATCH):
        people = Subscriber.objects.bulk_create(
            [Subscriber(email=f"p{i}@example{i % 97}.org") for i in
             range(start, min(subscribers, start + BATCH))])
        rows = []
        for person in people:
            i = person.id
            status = "pending" if i % 20 == 0 else "unsubscribed" if i % 20 == 1 else "confirmed"
            confirmed = None if status == "pending" else now - timedelta(days=i % 365)
            rows.append(Subscription(
                subscriber=person, mailing_list=big, status=status, confirmed_at=confirmed,
                unsubscribed_at=now - timedelta(days=i % 60) if status == "unsubscribed" else None))
        Subscription.objects.bulk_create(rows)
    Campaign.objects.bulk_create([Campaign(name=f"Campaign {i}", subject="s", body="b")
                                  for i in range(50)])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--subscribers", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    with Bench("dashboard") as bench:
        from django.conf import settings
        from django.contrib.auth import get_user_model
        from django.contrib.auth.models import Group
        from django.test import Client

        from config.dashboard import list_figures, recent_campaigns
        from config.roles import EDITOR, roles_ensure
        from newsletter.models import Subscription

        start = time.monotonic()
        fill(args.subscribers)
        bench.log(f"filled {args.subscribers} subscribers in {time.monotonic() - start:.1f} s")
        roles_ensure()
        editor = get_user_model().objects.create_user("edna", "e@x.example", "pw",
                                                      is_staff=True)
        editor.groups.add(Group.objects.get(name=EDITOR))
        settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "testserver"]
        client = Client(secure=True)  # the production settings redirect plain HTTP
        client.force_login(editor)
        warm = client.get("/admin/")  # templates, permissions
        assert warm.status_code == 200 and b'id="dash-lists"' in warm.content, warm.status_code
        big = next(r for r in list_figures() if r["list"].name == "Big")

        def bare_count():
            return Subscription.objects.filter(mailing_list__slug="big",
                                               status="confirmed").count()

        assert big["confirmed"] == bare_count()
        baseline = _median_ms(bare_count, args.repeat)
        figures = _median_ms(list_figures, args.repeat)
        campaigns = _median_ms(recent_campaigns, args.repeat)
        page = _median_ms(lambda: client.get("/admin/"), args.repeat)
        bench.report(subscribers=args.subscribers, bare_count_ms=baseline,
                     list_figures_ms=figures, recent_campaigns_ms=campaigns,
                     home_page_ms=page, ratio=round(figures / baseline, 2),
                     target_home_page_ms=250, target_ratio=10)


if __name__ == "__main__":
    main()
