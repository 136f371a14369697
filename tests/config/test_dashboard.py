"""The admin home (issue 21): figures per role, and a constant number of queries."""

from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from config.dashboard import list_figures, recent_campaigns
from config.roles import AUTHOR, EDITOR, OPERATOR, roles_ensure
from deliverability.breaker.engine import Breaker
from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from sending.models import Delivery, Mailing

pytestmark = pytest.mark.django_db


def _client(role: str | None) -> Client:
    roles_ensure()
    user = get_user_model().objects.create_user(role or "staff", "u@x.example", "pw",
                                                is_staff=True)
    if role:
        user.groups.add(Group.objects.get(name=role))
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def newsroom(redis_client):
    now = timezone.now()
    news = MailingList.objects.create(name="Shop News", slug="news")
    MailingList.objects.create(name="Empty", slug="empty")
    for i, (status, confirmed_days, left_days) in enumerate(
            [("confirmed", 2, None)] * 3 + [("confirmed", 20, None)] * 2
            + [("confirmed", 90, None)] * 4 + [("unsubscribed", 60, 3)]
            + [("unsubscribed", 10, 5)] + [("pending", None, None)] * 2):
        Subscription.objects.create(
            subscriber=Subscriber.objects.create(email=f"p{i}@x.example"), mailing_list=news,
            status=status,
            confirmed_at=now - timedelta(days=confirmed_days) if confirmed_days else None,
            unsubscribed_at=now - timedelta(days=left_days) if left_days else None)
    mailing = Mailing.objects.create(from_email="n@x.example", subject_template="s",
                                     text_template="t", recipients=3, state="sending")
    for i, state in enumerate(["sent", "sent", "queued"]):
        Delivery.objects.create(mailing=mailing, address=f"d{i}@x.example", state=state)
    Campaign.objects.create(name="Old draft", subject="s", body="b")
    Campaign.objects.create(name="Winter sale", subject="s", body="b", state="sending",
                            mailing=mailing, started_at=now - timedelta(hours=2))
    Breaker(redis=redis_client).pause("microsoft_consumer", "bulk", seconds=14390,
                                      actor="ops")
    return news


def test_list_figures_count_confirmed_and_growth(newsroom):
    rows = {r["list"].name: r for r in list_figures()}
    news = rows["Shop News"]
    assert news["confirmed"] == 9
    week, month = news["growth"]
    assert (week["days"], week["joined"], week["left"], week["net"]) == (7, 3, 2, 1)
    assert (month["joined"], month["left"], month["net"]) == (6, 2, 4)
    assert rows["Empty"]["confirmed"] == 0 and rows["Empty"]["growth"][0]["net"] == 0


def test_recent_campaigns_with_state_and_sent(newsroom):
    first, second = recent_campaigns()
    assert first["campaign"].name == "Winter sale" and (first["sent"], first["recipients"]) == (
        2, 3)
    assert second["campaign"].name == "Old draft" and second["sent"] is None


def test_a_finished_mailing_shows_its_campaign_sent_before_any_sync(newsroom):
    Mailing.objects.filter(state="sending").update(state="done")
    first, _ = recent_campaigns()
    assert first["campaign"].get_state_display() == "Sent"
    assert Campaign.objects.get(name="Winter sale").state == "sending"  # a page writes nothing


def test_editor_sees_lists_campaigns_and_pauses_but_no_service_links(newsroom):
    page = _client(EDITOR).get("/admin/").content.decode()
    lists = re.search(r'<div class="module" id="dash-lists">.*?</table>', page, re.S).group(0)
    assert "Shop News" in lists and '<td class="confirmed">9</td>' in lists
    campaigns = re.search(r'id="dash-campaigns">.*?</table>', page, re.S).group(0)
    assert "Winter sale" in campaigns and "2 of 3" in campaigns and "started 2 h ago" in campaigns
    report = f"/admin/newsletter/campaign/{Campaign.objects.get(name='Winter sale').pk}/report/"
    assert f'href="{report}"' in campaigns
    paused = re.search(r'id="dash-paused".*?</ul>', page, re.S).group(0)
    assert "Microsoft Outlook.com / Hotmail" in paused and "in 4 h" in paused
    assert "breaker-link" not in paused
    assert 'id="service-module"' not in page and "/admin/breakers/" not in page
    assert "/admin/report/" not in page


def test_author_sees_lists_and_campaigns(newsroom):
    page = _client(AUTHOR).get("/admin/").content.decode()
    assert 'id="dash-lists"' in page and 'id="dash-campaigns"' in page
    assert 'id="service-module"' not in page


def test_operator_sees_service_links_lists_and_linked_pauses(newsroom):
    page = _client(OPERATOR).get("/admin/").content.decode()
    assert 'id="service-module"' in page and 'href="/admin/report/"' in page
    assert 'id="dash-lists"' in page
    assert 'id="dash-campaigns"' not in page  # operators do not view campaigns
    assert 'class="breaker-link" href="/admin/breakers/"' in page


def test_plain_staff_sees_no_figures(newsroom):
    page = _client(None).get("/admin/").content.decode()
    assert 'id="dashboard"' not in page and 'id="service-module"' not in page
    assert "Shop News" not in page


def test_no_pause_says_so(db, redis_client):
    page = _client(EDITOR).get("/admin/").content.decode()
    assert 'id="dash-no-pause"' in page


def test_queries_do_not_grow_with_lists_or_campaigns(newsroom):
    client = _client(EDITOR)
    client.get("/admin/")  # warm caches (content types, permissions)

    def count() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert client.get("/admin/").status_code == 200
        return len(queries)

    before = count()
    for i in range(5):
        listed = MailingList.objects.create(name=f"L{i}", slug=f"l{i}")
        Subscription.objects.create(subscriber=Subscriber.objects.create(email=f"q{i}@x.example"),
                                    mailing_list=listed, status="confirmed",
                                    confirmed_at=timezone.now())
        mailing = Mailing.objects.create(from_email="n@x.example", subject_template="s",
                                         text_template="t", recipients=1)
        Campaign.objects.create(name=f"C{i}", subject="s", body="b", mailing=mailing)
    assert count() == before
