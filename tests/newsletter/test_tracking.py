# ruff: noqa: F811 - the fixtures imported from test_campaigns are parameters here
"""Click and open tracking: rewriting at start, signed links, the redirect, the drain
(human vs machine), privacy modes, retention, segments."""

from __future__ import annotations

import re
import time
from datetime import timedelta

import pytest
from django.utils import timezone

from newsletter import tracking, tracking_drain
from newsletter.campaigns import campaign_audience, campaign_schedule, campaign_start
from newsletter.models import (
    Campaign,
    MailingList,
    Subscription,
    TrackedLink,
    TrackingCount,
    TrackingEvent,
    TrackingUnique,
)
from sending.models import Delivery
from sending.recipients import recipient_contexts
from sending.render import compile_template
from tests.newsletter.test_campaigns import (  # noqa: F401 - fixtures
    audience,
    layout,
    make_campaign,
    no_mx_lookups,
    subscribe,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
BODY = ("# Hi {{ subscriber.name|default:\"reader\" }}\n\n"
        "[Spring](https://shop.example/spring?a=1&b=2) and [blog](https://blog.example/post).\n\n"
        "[Spring again](https://shop.example/spring?a=1&b=2), "
        "[write](mailto:hi@shop.example), [prefs]({{ preferences_url }}), "
        "[own unsubscribe page](http://testserver/u/abc/).")
BROWSER = ("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/124.0 Safari/537.36")


@pytest.fixture(autouse=True)
def site(settings):
    settings.SITE_URL = "http://testserver"
    tracking.link_cache_clear()
    with tracking._buffer.lock:
        tracking._buffer.lines.clear()  # nothing left over from another test


def started(mailing_list, layout, **fields):
    fields.setdefault("body", BODY)
    campaign = make_campaign(mailing_list, layout, **fields)
    campaign_schedule(campaign, timezone.now())
    campaign = campaign_start(campaign.id)
    assert campaign.state == "sending", campaign.last_error
    return campaign


def rendered(campaign, subscription) -> tuple[str, str]:
    """The HTML and text one recipient gets (the engine's templates and contexts)."""
    context = recipient_contexts([subscription.id])[subscription.id]
    mailing = campaign.mailing
    return (compile_template(mailing.html_template, html=True).render(context),
            compile_template(mailing.text_template).render(context))


def click_urls(html: str) -> list[str]:
    return re.findall(r'href="(http://testserver/c/[^"]+)"', html)


def path_of(url: str) -> str:
    return url.removeprefix("http://testserver")


def sent_long_ago(campaign):
    Delivery.objects.filter(mailing=campaign.mailing).update(
        state="sent", sent_at=timezone.now() - timedelta(hours=1))


def drain():
    return tracking_drain.tracking_drain(now=time.time() + 120)


# --------------------------------------------------------------------------- rewriting
def test_links_are_rewritten_but_unsubscribe_preferences_and_mailto_never(
        mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True)
    mailing = campaign.mailing
    assert "https://shop.example/spring" not in mailing.html_template
    assert "{{ unsubscribe_url }}" in mailing.html_template
    assert "{{ preferences_url }}" in mailing.html_template
    assert "mailto:hi@shop.example" in mailing.html_template
    assert "http://testserver/u/abc/" in mailing.html_template
    targets = list(TrackedLink.objects.filter(campaign=campaign).values_list("index", "url"))
    # One index per distinct target, the query string unescaped as stored.
    assert targets == [(0, "https://shop.example/spring?a=1&b=2"),
                       (1, "https://blog.example/post")]
    assert f"{{{{ track.c{campaign.id}-0 }}}}" in mailing.text_template
    assert "https://blog.example/post" not in mailing.text_template
    html, text = rendered(campaign, audience["ann"])
    assert len(click_urls(html)) == 3
    assert text.count("http://testserver/c/") == 3
    assert "/u/" in html and "/p/" in html  # unsubscribe and preferences stay direct


def test_list_default_decides_when_the_campaign_does_not_and_start_freezes_it(
        mailing_list, layout, audience):
    mailing_list.track_clicks = True
    mailing_list.tracking_privacy = "linked"
    mailing_list.save()
    campaign = started(mailing_list, layout)
    assert campaign.track_clicks is True and campaign.tracking_privacy == "linked"
    assert "{{ track.c" in campaign.mailing.html_template
    mailing_list.track_clicks = False
    mailing_list.save()
    campaign.refresh_from_db()
    assert campaign.track_clicks is True


def test_no_tracking_by_default(mailing_list, layout, audience):
    campaign = started(mailing_list, layout)
    assert "https://shop.example/spring" in campaign.mailing.html_template
    assert "track." not in campaign.mailing.html_template
    assert not TrackedLink.objects.exists()


# --------------------------------------------------------------------------- the redirect
def test_click_redirects_at_once_and_is_counted_by_the_drain(
        client, mailing_list, layout, audience, redis_client):
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    response = client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 302
    assert response["Location"] == "https://shop.example/spring?a=1&b=2"
    assert response["Referrer-Policy"] == "no-referrer"
    assert not TrackingCount.objects.exists()  # counted later, in a batch
    tracking.hits_flush()  # the web process's background push
    assert redis_client.llen(tracking.HITS_KEY) == 1
    assert drain() == 1
    row = TrackingCount.objects.get()
    assert (row.kind, row.link_index, row.machine_reason, row.count) == ("click", 0, "", 1)
    assert row.provider  # from the delivery: the per-provider click-through
    assert TrackingUnique.objects.get(kind="click", provider="").count == 1
    assert redis_client.llen(tracking.HITS_KEY) == 0


@pytest.mark.parametrize("change", ["forged", "altered_value", "altered_signature",
                                    "other_salt", "garbage"])
def test_forged_or_altered_token_gets_an_error_page_never_a_redirect(
        client, mailing_list, layout, audience, redis_client, change):
    from django.core import signing

    campaign = started(mailing_list, layout, track_clicks=True)
    html, _ = rendered(campaign, audience["ann"])
    token = path_of(click_urls(html)[0]).split("/")[2]
    value, _, signature = token.rpartition(":")
    bad = {
        "forged": signing.Signer(key="not-our-key", salt=tracking.CLICK_SALT).sign(value),
        "altered_value": value.replace(f".{audience['ann'].id}", f".{audience['bob'].id}")
        + ":" + signature,
        "altered_signature": value + ":" + signature[:-2] + ("AA" if signature[-2:] != "AA"
                                                             else "BB"),
        "other_salt": signing.Signer(salt="newsletter.unsubscribe").sign(value),
        "garbage": "https:%2F%2Fevil.example",
    }[change]
    response = client.get(f"/c/{bad}/")
    assert response.status_code == 404
    assert "Location" not in response
    assert b"This link does not work" in response.content
    tracking.hits_flush()
    assert redis_client.llen(tracking.HITS_KEY) == 0


def test_a_signed_token_for_a_link_that_does_not_exist_is_refused(
        client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True)
    response = client.get(f"/c/{tracking.click_token(campaign.id, 99, audience['ann'].id)}/")
    assert response.status_code == 404 and "Location" not in response


def test_old_mails_keep_working_after_a_key_rotation(client, settings, mailing_list, layout,
                                                     audience):
    campaign = started(mailing_list, layout, track_clicks=True)
    html, _ = rendered(campaign, audience["ann"])
    old = settings.SECRET_KEY
    settings.SECRET_KEY = "a-brand-new-secret-key-for-rotation-0123456789"
    settings.SECRET_KEY_FALLBACKS = [old]
    assert client.get(path_of(click_urls(html)[0])).status_code == 302
    settings.SECRET_KEY_FALLBACKS = []
    assert client.get(path_of(click_urls(html)[0])).status_code == 404


# --------------------------------------------------------------------------- machines
def test_a_click_on_every_link_within_a_second_is_a_scanner(
        client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True,
                       body=BODY + " [third](https://shop.example/third)")
    sent_long_ago(campaign)
    scanner_html, _ = rendered(campaign, audience["ann"])
    for url in click_urls(scanner_html):  # every link at once, with a browser's agent
        assert client.get(path_of(url), HTTP_USER_AGENT=BROWSER).status_code == 302
    person_html, _ = rendered(campaign, audience["bob"])
    client.get(path_of(click_urls(person_html)[1]), HTTP_USER_AGENT=BROWSER)
    drain()
    machine = TrackingCount.objects.filter(machine_reason="burst")
    assert sum(r.count for r in machine) == 4  # all of Ann's (one target twice)
    human = TrackingCount.objects.get(machine_reason="")
    assert (human.link_index, human.count) == (1, 1)  # Bob's one click
    assert TrackingUnique.objects.get(kind="click", provider="").count == 1


def test_scanner_agents_and_fetches_right_after_delivery_are_machines(
        client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    ann_html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(ann_html)[0]), HTTP_USER_AGENT="python-requests/2.31")
    client.get(path_of(click_urls(ann_html)[1]), HTTP_USER_AGENT="")
    Delivery.objects.filter(subscription_id=audience["bob"].id).update(sent_at=timezone.now())
    bob_html, _ = rendered(campaign, audience["bob"])
    client.get(path_of(click_urls(bob_html)[0]), HTTP_USER_AGENT=BROWSER)
    drain()
    reasons = dict(TrackingCount.objects.values_list("machine_reason", "count"))
    assert reasons == {"scanner_ua": 1, "no_user_agent": 1, "prefetch": 1}
    assert not TrackingUnique.objects.filter(count__gt=0).exists()


# Two starts in one test: each must commit (PostgreSQL's ledger uses ON COMMIT DROP tables).
@pytest.mark.django_db(transaction=True)
def test_opens_off_by_default_and_a_pixel_when_asked(client, mailing_list, layout, audience):
    plain = started(mailing_list, layout, track_clicks=True)
    assert "track.o" not in plain.mailing.html_template
    campaign = started(mailing_list, layout, name="With opens", track_opens=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    pixel = re.search(r'<img src="(http://testserver/o/[^"]+)"', html).group(1)
    response = client.get(path_of(pixel), HTTP_USER_AGENT=BROWSER)
    assert response.status_code == 200 and response["Content-Type"] == "image/gif"
    client.get(path_of(pixel), HTTP_USER_AGENT="Mozilla/5.0")  # Apple MPP's bare agent
    client.get(path_of(pixel), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="17.58.1.2")  # Apple
    assert client.get("/o/1.2:forged/").status_code == 404
    drain()
    reasons = {}
    for reason, n in TrackingCount.objects.filter(kind="open").values_list("machine_reason",
                                                                           "count"):
        reasons[reason] = reasons.get(reason, 0) + n
    assert reasons == {"": 1, "apple_mpp": 2}


def test_a_click_from_apples_network_is_a_person_browsing_through_private_relay(
        client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER, REMOTE_ADDR="17.58.1.2")
    drain()
    assert TrackingCount.objects.get().machine_reason == ""


# --------------------------------------------------------------------------- privacy
def test_counts_only_mode_stores_no_subscriber_id(client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True, track_opens=True,
                       tracking_privacy="counts")
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    client.get(path_of(re.search(r'src="(http://testserver/o/[^"]+)"', html).group(1)),
               HTTP_USER_AGENT=BROWSER)
    assert drain() == 2
    assert TrackingCount.objects.filter(count__gt=0).count() == 2
    assert not TrackingEvent.objects.exists()
    # Nothing in any tracking table, nor left in Redis, names the subscription.
    from django.forms.models import model_to_dict

    sid = audience["ann"].id
    for model in (TrackingCount, TrackingUnique, TrackedLink):
        for row in model.objects.all():
            values = model_to_dict(row)
            values.pop("id")
            assert sid not in [v for k, v in values.items() if k not in ("count", "campaign",
                                                                        "link_index", "index")]
    from config.redis import get_redis

    redis = get_redis()
    for key in redis.keys("newsletter:tracking:*"):
        if redis.type(key) == b"list":
            assert not redis.lrange(key, 0, -1)
        elif redis.type(key) == b"string" and not key.startswith(b"newsletter:tracking:uniq"):
            assert str(sid).encode() not in redis.get(key)


def test_linked_mode_keeps_events_until_the_retention_period(
        client, mailing_list, layout, audience, monkeypatch):
    from newsletter import conf

    campaign = started(mailing_list, layout, track_clicks=True, tracking_privacy="linked")
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    drain()
    event = TrackingEvent.objects.get()
    assert (event.subscription_id, event.kind, event.machine) == (audience["ann"].id, "click",
                                                                  False)
    monkeypatch.setattr(conf, "TRACKING_LINKED_RETENTION_DAYS", 30)
    assert tracking.tracking_events_expire(now=timezone.now() + timedelta(days=29)) == 0
    assert tracking.tracking_events_expire(now=timezone.now() + timedelta(days=31)) == 1
    assert not TrackingEvent.objects.exists()
    assert TrackingCount.objects.get().count == 1  # the counts stay


def test_erasing_a_subscriber_drops_their_linked_hits(client, mailing_list, layout, audience):
    campaign = started(mailing_list, layout, track_clicks=True, tracking_privacy="linked")
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    drain()
    assert TrackingEvent.objects.count() == 1
    audience["ann"].subscriber.delete()
    assert not TrackingEvent.objects.exists()


# --------------------------------------------------------------------------- the drain
def test_a_drain_that_died_after_staging_counts_its_batch_exactly_once(
        client, mailing_list, layout, audience, redis_client, monkeypatch):
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    real_apply = tracking_drain._apply
    calls = []

    def apply_then_die(lines):
        calls.append(len(lines))
        real_apply(lines)
        raise RuntimeError("worker killed after the commit, before the staged batch went")

    monkeypatch.setattr(tracking_drain, "_apply", apply_then_die)
    with pytest.raises(RuntimeError):
        drain()
    monkeypatch.setattr(tracking_drain, "_apply", real_apply)
    redis_client.delete(tracking_drain.LOCK_KEY)  # the dead drain's lock would expire by itself
    assert redis_client.exists(tracking_drain.STAGED_KEY)
    drain()
    assert TrackingCount.objects.get().count == 1
    assert not redis_client.exists(tracking_drain.STAGED_KEY)


def test_a_recipients_hits_wait_until_they_have_settled(client, mailing_list, layout,
                                                        audience, redis_client):
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    assert tracking_drain.tracking_drain(now=time.time()) == 0  # a burst may still be under way
    assert redis_client.llen(tracking.HITS_KEY) == 1
    assert drain() == 1


def test_malformed_lines_in_redis_are_dropped_and_the_rest_counted(
        client, mailing_list, layout, audience, redis_client):
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    redis_client.rpush(tracking.HITS_KEY, "click\tnot-a-number", "\xff garbage")
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    assert drain() == 1
    assert redis_client.llen(tracking.HITS_KEY) == 0


# --------------------------------------------------------------------------- segments
def test_segment_clicked_campaign_and_opened_recently(client, mailing_list, layout, audience):
    first = started(mailing_list, layout, track_clicks=True, track_opens=True,
                    tracking_privacy="linked")
    sent_long_ago(first)
    ann_html, _ = rendered(first, audience["ann"])
    client.get(path_of(click_urls(ann_html)[0]), HTTP_USER_AGENT=BROWSER)
    bob_html, _ = rendered(first, audience["bob"])
    client.get(path_of(re.search(r'src="(http://testserver/o/[^"]+)"', bob_html).group(1)),
               HTTP_USER_AGENT=BROWSER)
    client.get(path_of(click_urls(bob_html)[0]), HTTP_USER_AGENT="curl/8.0")  # a machine
    drain()
    other = MailingList.objects.create(name="Other", slug="other")
    subscribe(other, "ann@example.org")
    subscribe(other, "bob@example.net")
    follow_up = Campaign.objects.create(name="Follow-up", segment_clicked_campaign=first)
    follow_up.lists.add(other)
    assert [s.subscriber.email for s in campaign_audience(follow_up)] == ["ann@example.org"]
    follow_up.segment_clicked_campaign = None
    follow_up.segment_opened_days = 7
    assert [s.subscriber.email for s in campaign_audience(follow_up)] == ["bob@example.net"]
    TrackingEvent.objects.update(at=timezone.now() - timedelta(days=8))
    assert not campaign_audience(follow_up).exists()
    assert Subscription.objects.filter(mailing_list=other).count() == 2


def test_the_redirect_never_waits_for_redis_and_an_outage_loses_no_hit(
        client, settings, mailing_list, layout, audience, redis_client, monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "TRACKING_FLUSH_MS", 60_000)  # only explicit flushes here
    campaign = started(mailing_list, layout, track_clicks=True)
    sent_long_ago(campaign)
    html, _ = rendered(campaign, audience["ann"])
    real_url = settings.REDIS_URL
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER).status_code == 302
    tracking.hits_flush()  # fails: the line is kept
    assert len(tracking._buffer.lines) == 1
    settings.REDIS_URL = real_url
    assert drain() == 1  # the drain pushes this process's lines first
    assert TrackingCount.objects.get().count == 1


def test_flush_interval_zero_pushes_in_the_request(client, mailing_list, layout, audience,
                                                   redis_client, monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "TRACKING_FLUSH_MS", 0)
    campaign = started(mailing_list, layout, track_clicks=True)
    html, _ = rendered(campaign, audience["ann"])
    client.get(path_of(click_urls(html)[0]), HTTP_USER_AGENT=BROWSER)
    assert redis_client.llen(tracking.HITS_KEY) == 1 and not tracking._buffer.lines


def test_tokens_are_plain_django_signatures(settings):
    """The cached key derivation changes nothing: Django's own Signer reads our tokens."""
    from django.core import signing

    token = tracking.click_token(12, 3, 4567)
    assert token == signing.Signer(salt=tracking.CLICK_SALT).sign("12.3.4567")
    assert signing.Signer(salt=tracking.OPEN_SALT).unsign(tracking.open_token(12, 4567)) \
        == "12.4567"


def test_editors_cannot_write_tracking_tags_themselves(mailing_list, layout, audience):
    from newsletter.campaigns import campaign_errors

    campaign = make_campaign(mailing_list, layout, body="[x]({{ track.c1-0 }}) {{ track.o1 }}")
    assert "track" in campaign_errors(campaign)["body"]


def test_checklist_warns_when_a_click_segment_points_at_a_counts_only_campaign(
        mailing_list, layout, audience):
    from newsletter.campaigns import campaign_checklist

    counted = started(mailing_list, layout, track_clicks=True, tracking_privacy="counts")
    follow_up = make_campaign(mailing_list, layout, name="Follow-up",
                              segment_clicked_campaign=counted)
    warning = [c for c in campaign_checklist(follow_up) if c.level == "warning"
               and "clicked in" in c.name]
    assert warning and "counts only" in warning[0].detail
    Campaign.objects.filter(pk=counted.pk).update(tracking_privacy="linked")
    follow_up.refresh_from_db()
    assert not [c for c in campaign_checklist(follow_up) if "clicked in" in c.name]
