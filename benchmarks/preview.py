"""The compose page's live preview of a 50 KB body: ``python -m benchmarks.preview``

Posts a realistic Markdown body (headings, paragraphs, links, lists, merge tags;
~50 KB) to the real live-preview endpoint through Django's test client, as a
logged-in editor, the body changed a little each round as typing changes it:
the whole request (session, CSRF middleware, permission, form fields, Markdown,
the layout, the CSS inliner, personalisation checks and rendering, JSON).
The baseline, measured in the same run and interleaved round by round so both
see the same machine load: the bare Markdown render of the same body
(``markdown.markdown`` with the project's extensions), the floor of any preview.

Final line: one JSON object with ``p95_ms`` (target <= 150), ``p50_ms``, the
baseline's, and ``ratio_p95`` (preview p95 over the baseline's p95).
``DATABASE_URL=postgresql://...`` runs it on PostgreSQL; SQLite otherwise.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

from benchmarks.harness import Bench

TARGET_P95_MS = 150.0
BODY_BYTES = 50_000

SECTION = """\
## {n}. News from the {place} shop

Hello {{{{ subscriber.name|default:"friend" }}}}, this week in {place} we have
**new arrivals** in the [spring collection](https://shop.example/{place}/spring?item={n})
and a few _last pieces_ of the winter range, at [reduced prices](https://shop.example/sale/{n}).
Our team in {{{{ subscriber.attributes.city|default:"your town" }}}} picked these for you:

- A linen shirt in three colours ([see it](https://shop.example/p/{n}1))
- Canvas shoes, made in Portugal ([see them](https://shop.example/p/{n}2))
- A rain jacket that packs into its own pocket ([details](https://shop.example/p/{n}3))

> "The best jacket I have owned." — a reader from {place}

Opening hours change on public holidays; see [our shops page](https://shop.example/shops)
or reply to this mail, we read every answer. You can also
[manage your preferences]({{{{ preferences_url }}}}) at any time.

"""
PLACES = ("Berlin", "Hamburg", "Munich", "Cologne", "Leipzig", "Dresden", "Bremen", "Kiel")


def body_markdown(size: int = BODY_BYTES) -> str:
    parts = ["# The {{ subscriber.name|default:\"reader\" }} weekly\n\n"]
    n = 0
    while sum(len(p) for p in parts) < size:
        n += 1
        parts.append(SECTION.format(n=n, place=PLACES[n % len(PLACES)]))
    return "".join(parts)


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(share * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=10)
    args = parser.parse_args()

    with Bench("preview") as bench:
        import markdown
        from django.contrib.auth import get_user_model
        from django.test import Client

        from config.roles import EDITOR, roles_ensure
        from newsletter.campaigns import layout_default

        layout = layout_default()
        layout.postal_address = "Shop GmbH, Hauptstrasse 1, 10115 Berlin"
        layout.save()
        user = get_user_model().objects.create_user("bench-editor", "e@shop.example", "pw",
                                                    is_staff=True)
        user.groups.add(roles_ensure()[EDITOR])
        client = Client(HTTP_HOST="localhost", enforce_csrf_checks=True)
        client.force_login(user)
        client.get("/admin/")
        token = client.cookies["csrftoken"].value
        url = "/admin/newsletter/campaign/live-preview/"
        body = body_markdown()
        bench.log(f"body: {len(body.encode())} bytes, {body.count('{{')} merge tags, "
                  f"{body.count('](')} links; {args.rounds} rounds")

        def preview(i: int) -> float:
            typed = f"{body}\nP.S. typed {i}\n"
            start = time.perf_counter()
            response = client.post(url, {
                "csrfmiddlewaretoken": token, "subject": "Weekly {{ subscriber.name }}",
                "preheader": "New this week", "layout": str(layout.pk),
                "body_format": "markdown", "body": typed, "text_body": ""})
            elapsed = time.perf_counter() - start
            if response.status_code != 200:
                raise SystemExit(f"preview answered {response.status_code}: "
                                 f"{response.content[:300]!r}")
            html = response.json()["html"]
            if f"P.S. typed {i}" not in html or "Hello Sample Reader" not in html:
                raise SystemExit("the preview does not show the typed body")
            return elapsed

        def baseline(i: int) -> float:
            typed = f"{body}\nP.S. typed {i}\n"
            start = time.perf_counter()
            markdown.markdown(typed, extensions=["extra", "sane_lists"])
            return time.perf_counter() - start

        for i in range(args.warmup):
            preview(-i - 1)
            baseline(-i - 1)
        previews, baselines = [], []
        for i in range(args.rounds):
            previews.append(preview(i) * 1000)
            baselines.append(baseline(i) * 1000)
        p95, base_p95 = _percentile(previews, 0.95), _percentile(baselines, 0.95)
        bench.report(
            body_bytes=len(body.encode()), rounds=args.rounds,
            p50_ms=round(statistics.median(previews), 2), p95_ms=round(p95, 2),
            max_ms=round(max(previews), 2),
            baseline_p50_ms=round(statistics.median(baselines), 2),
            baseline_p95_ms=round(base_p95, 2), ratio_p95=round(p95 / base_p95, 2),
            target_p95_ms=TARGET_P95_MS, meets_target=p95 <= TARGET_P95_MS,
            cpus=os.cpu_count(), load_avg_1m=round(os.getloadavg()[0], 2))


if __name__ == "__main__":
    main()
