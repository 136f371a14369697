"""Every admin URL (from the URL resolver) and every admin action, per role.

A new admin page or action shows up here by itself: it is walked as a plain staff
user, an author, an editor and an operator, and the pages each may open are
compared with the sets below, which say the same as the README's security section.
A superuser opens every page first, so a page refused for a wrong reason (a
missing object, a bad argument) fails the walk instead of passing as "denied".
"""

from __future__ import annotations

import re
import smtplib
import zlib

import pytest
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver
from django_celery_beat.models import (
    ClockedSchedule,
    CrontabSchedule,
    IntervalSchedule,
    PeriodicTask,
    SolarSchedule,
)

from api.models import ApiToken, TransactionalTemplate
from config.roles import AUTHOR, EDITOR, OPERATOR, roles_ensure
from deliverability.models import (
    BounceEvent,
    BreakerRuleOverride,
    BreakerTransition,
    InboundMessage,
    Suppression,
)
from newsletter.campaign_models import Campaign, Layout
from newsletter.media import media_store
from newsletter.media_models import ContentBlock, MediaAsset
from newsletter.models import (
    ConsentRecord,
    ConsentText,
    MailingList,
    Subscriber,
    SubscriberImport,
    Subscription,
)
from sending.models import Delivery, Mailing, RelayPool, TransactionalEmail
from sending.sink import sink_messages
from sending.warmup_models import WarmupPlan
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db

# Pages nobody reaches, superusers included: the admin's "view on site" for models
# without a public page, autocomplete (no admin uses autocomplete_fields), and the
# catch-all that turns unknown admin URLs into 404s.
NOWHERE = {"r/<content_type_id>/<object_id>/", "autocomplete/"}
SKIPPED_ROUTES = {r"(?P<url>.*)$"}

ALWAYS = {"", "login/", "logout/", "password_change/", "password_change/done/", "jsi18n/"}


def _model_pages(model: str, *kinds: str) -> set[str]:
    pages = {"": "", "add": "add/", "change": "<object_id>/change/",
             "history": "<object_id>/history/", "delete": "<object_id>/delete/",
             "object": "<object_id>/"}
    return {f"{model}/{pages[kind]}" for kind in kinds}


VIEW = ("", "change", "history", "object")
STAFF_ONLY = ALWAYS
AUTHOR_PAGES = ALWAYS | {"newsletter/"} | _model_pages(
    "newsletter/campaign", *VIEW, "add") | _model_pages(
    "newsletter/layout", *VIEW, "add") | _model_pages("newsletter/mailinglist", *VIEW) | {
    "newsletter/campaign/<pk>/preview/", "newsletter/campaign/<pk>/preview/frame/",
    "newsletter/campaign/<pk>/action/", "newsletter/campaign/<pk>/report/",
    "newsletter/campaign/audience-count/", "newsletter/campaign/live-preview/"} | _model_pages(
    "newsletter/mediaasset", *VIEW, "add") | _model_pages(
    "newsletter/contentblock", *VIEW, "add") | {
    "newsletter/mediaasset/upload/", "newsletter/contentblock/choices/"}
EDITOR_PAGES = AUTHOR_PAGES | _model_pages("newsletter/campaign", "delete") | _model_pages(
    "newsletter/mediaasset", "delete") | _model_pages("newsletter/contentblock", "delete") | \
    _model_pages(
    "newsletter/subscriber", *VIEW) | _model_pages("newsletter/subscription", *VIEW) | \
    _model_pages("newsletter/subscriberimport", *VIEW, "add") | {"api/"} | \
    _model_pages("api/apitoken", *VIEW, "add") | {
    "newsletter/subscriberimport/<import_id>/report/", "newsletter/campaign/<pk>/send-now/",
    "newsletter/subscriberimport/<import_id>/mapping/"}
OPERATOR_PAGES = ALWAYS | {"newsletter/", "sending/", "deliverability/"} | \
    _model_pages("newsletter/mailinglist", *VIEW, "add") | \
    _model_pages("newsletter/subscriber", *VIEW, "delete") | \
    _model_pages("newsletter/subscription", *VIEW) | \
    _model_pages("newsletter/consentrecord", *VIEW) | \
    _model_pages("newsletter/consenttext", *VIEW) | \
    _model_pages("sending/relaypool", *VIEW, "add") | \
    _model_pages("sending/mailing", *VIEW) | _model_pages("sending/delivery", *VIEW) | \
    _model_pages("sending/transactionalemail", *VIEW) | \
    _model_pages("deliverability/breakertransition", *VIEW) | \
    _model_pages("deliverability/breakerruleoverride", *VIEW, "add", "delete") | \
    _model_pages("deliverability/suppression", *VIEW, "add", "delete") | \
    _model_pages("deliverability/inboundmessage", *VIEW) | \
    _model_pages("deliverability/bounceevent", *VIEW) | \
    _model_pages("sending/warmupplan", *VIEW, "add", "delete") | {"api/"} | \
    _model_pages("api/apitoken", *VIEW, "add") | \
    _model_pages("api/transactionaltemplate", *VIEW, "add", "delete") | {
    "sink/", "sink/<key>/", "breakers/", "breakers/action/", "reputation/checks/",
    "reputation/headers/", "report/"}

# Admin actions each role is offered (and so may run: Django refuses any other).
AUTHOR_ACTIONS: dict[str, set[str]] = {}
EDITOR_ACTIONS = {"newsletter.campaign": {"delete_selected"},
                  "newsletter.mediaasset": {"delete_selected"},
                  "newsletter.contentblock": {"delete_selected"},
                  "newsletter.subscription": {"unsubscribe"}, "api.apitoken": {"revoke"}}
OPERATOR_ACTIONS = {
    "newsletter.mailinglist": {"export_csv"},
    "newsletter.subscriber": {"erase", "delete_selected"},
    "newsletter.subscription": {"unsubscribe"},
    "deliverability.suppression": {"remove_suppressions", "delete_selected"},
    "deliverability.inboundmessage": {"reclassify_messages", "mark_reviewed"},
    "deliverability.bounceevent": {"reclassify_events"},
    "deliverability.breakerruleoverride": {"delete_selected"},
    "sending.warmupplan": {"delete_selected"},
    "api.apitoken": {"revoke"},
    "api.transactionaltemplate": {"delete_selected"},
}

ROLE_EXPECTATIONS = {
    None: (STAFF_ONLY, {}),
    AUTHOR: (AUTHOR_PAGES, AUTHOR_ACTIONS),
    EDITOR: (EDITOR_PAGES, EDITOR_ACTIONS),
    OPERATOR: (OPERATOR_PAGES, OPERATOR_ACTIONS),
}

SINK_MESSAGE = (b"From: a@example.org\r\nTo: b@example.org\r\nSubject: walk\r\n\r\n"
                b"https://example.org/confirm/secret-token\r\n")


@pytest.fixture
def objects(settings, tmp_path, smtp_sink):
    """One row of every model the admin shows, and one mail in the sink."""
    settings.MEDIA_ROOT = tmp_path / "media"
    with smtplib.SMTP("127.0.0.1", smtp_sink.port) as session:
        session.sendmail("a@example.org", ["b@example.org"], SINK_MESSAGE)
    wait_until(lambda: sink_messages(smtp_sink.directory))
    mailing_list = MailingList.objects.create(name="News", slug="news")
    subscriber = Subscriber.objects.create(email="ann@example.org")
    subscription = Subscription.objects.create(subscriber=subscriber,
                                               mailing_list=mailing_list)
    job = SubscriberImport.objects.create(mailing_list=mailing_list)
    job.report.save("report.csv", ContentFile(b"row,problem\n"))
    pool = RelayPool.objects.get_or_create(name="bulk", defaults={"purpose": "bulk"})[0]
    pool.relays.create(name="main", host="127.0.0.1", port=smtp_sink.port, tls_mode="none")
    mailing = Mailing.objects.create(from_email="a@example.org", subject_template="s",
                                     text_template="t")
    message = InboundMessage.objects.create(key="0" * 64, source="smtp",
                                            raw_compressed=zlib.compress(b"Subject: x\r\n\r\n"))
    rows = {
        MailingList: mailing_list, Subscriber: subscriber, Subscription: subscription,
        SubscriberImport: job, RelayPool: pool, Mailing: mailing, InboundMessage: message,
        ConsentRecord: ConsentRecord.objects.create(event="subscribed", source="admin",
                                                    address_sha256="1" * 64),
        ConsentText: ConsentText.objects.create(mailing_list=mailing_list, version=1,
                                                text="t", sha256="2" * 64),
        Layout: Layout.objects.first() or Layout.objects.create(name="l", html="{{ body }}"),
        Campaign: Campaign.objects.create(name="Spring"),
        MediaAsset: media_store(data=_png(), filename="logo.png")[0],
        ContentBlock: ContentBlock.objects.create(name="Signature", body="Yours, Ann"),
        TransactionalEmail: TransactionalEmail.objects.create(to="b@example.org", subject="s",
                                                              body_text="t"),
        Delivery: Delivery.objects.create(mailing=mailing, address="b@example.org"),
        Suppression: Suppression.objects.create(address="c@example.org", reason="hard"),
        TransactionalTemplate: TransactionalTemplate.objects.create(
            slug="receipt", subject="s", body_text="t"),
        WarmupPlan: WarmupPlan.objects.create(kind="ip", target="192.0.2.1",
                                              started_on="2026-01-01"),
        BreakerTransition: BreakerTransition.objects.create(
            provider="google", pool="bulk", from_state="ok", to_state="paused"),
        BounceEvent: BounceEvent.objects.create(message=message, kind="hard"),
        BreakerRuleOverride: BreakerRuleOverride.objects.create(
            rule_id="r1", pattern="x", klass="block"),
        PeriodicTask: PeriodicTask.objects.create(
            name="t", task="x", interval=IntervalSchedule.objects.create(every=1,
                                                                         period="days")),
        IntervalSchedule: IntervalSchedule.objects.first(),
        CrontabSchedule: CrontabSchedule.objects.create(),
        SolarSchedule: SolarSchedule.objects.create(event="sunrise", latitude=1, longitude=1),
        ClockedSchedule: ClockedSchedule.objects.create(clocked_time="2026-01-01T00:00Z"),
    }
    User = get_user_model()
    superuser = User.objects.create_superuser("root", "root@example.org", "pw-root-123456")
    from django.contrib.auth.models import Group

    rows[User] = superuser
    from axes.models import AccessAttempt, AccessFailureLog, AccessLog
    from django_otp.plugins.otp_totp.models import TOTPDevice

    seen = {"user_agent": "x", "http_accept": "x", "path_info": "/admin/login/",
            "username": "x", "ip_address": "127.0.0.1"}
    rows[AccessAttempt] = AccessAttempt.objects.create(**seen, get_data="", post_data="",
                                                       failures_since_start=1)
    rows[AccessLog] = AccessLog.objects.create(**seen)
    rows[AccessFailureLog] = AccessFailureLog.objects.create(**seen)
    owner = User.objects.create_user("device-owner", password="pw-owner-12345")
    rows[TOTPDevice] = TOTPDevice.objects.create(user=owner, name="phone")
    rows[Group] = Group.objects.first() or Group.objects.create(name="g")
    rows[ApiToken] = ApiToken.objects.create(user=owner, name="shop", prefix="abcd",
                                             key_sha256="3" * 64, scopes=["read"])
    for model in admin.site._registry:
        assert model in rows, f"the walk needs a row of {model._meta.label}"
    return {"rows": rows, "sink_key": sink_messages(smtp_sink.directory)[0].key,
            "superuser": superuser}


def _png() -> bytes:
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (4, 4), (1, 2, 3)).save(out, format="PNG")
    return out.getvalue()


def _walk(patterns, prefix=""):
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern))
        elif isinstance(pattern, URLPattern):
            yield prefix + str(pattern.pattern)


def admin_routes() -> list[str]:
    """Every route under admin/, as written in the URL configuration."""
    return [route.removeprefix("admin/") for route in _walk(get_resolver().url_patterns)
            if route.startswith("admin/")]


APP_INDEX = re.compile(r"^\^\(\?P<app_label>([\w|]+)\)/\$$")


def concrete_urls(objects) -> dict[str, str]:
    """{route key: URL to request}; app indexes expand to one key per app."""
    rows = objects["rows"]
    by_path = {f"{m._meta.app_label}/{m._meta.model_name}/": obj for m, obj in rows.items()}
    urls = {}
    for route in admin_routes():
        if route in SKIPPED_ROUTES:
            continue
        index = APP_INDEX.match(route)
        if index:
            for label in index.group(1).split("|"):
                urls[f"{label}/"] = f"/admin/{label}/"
            continue
        assert "(?P" not in route, f"a regular-expression admin route to teach the walk: {route}"
        key = re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", route)
        owner = next((obj for p, obj in by_path.items() if route.startswith(p)), None)

        def value(match, owner=owner, route=route):
            name = match.group(1)
            if name == "key":
                return objects["sink_key"]
            if name == "content_type_id":
                return str(ContentType.objects.get_for_model(Campaign).pk)
            if route.startswith("r/"):
                return str(rows[Campaign].pk)
            assert owner is not None, f"no object for {route}"
            return str(owner.pk)

        urls[key] = "/admin/" + re.sub(r"<(?:\w+:)?(\w+)>", value, route)
    return urls


def _opens(user, url: str) -> tuple[bool, int]:
    client = Client()
    client.force_login(user)
    response = client.get(url, follow=True)
    if response.status_code == 405:
        client.force_login(user)
        response = client.post(url, {}, follow=True)
    final = response.redirect_chain[-1][0] if response.redirect_chain else url
    to_login = "/admin/login/" in final and not url.startswith("/admin/login/")
    return response.status_code < 400 and not to_login, response.status_code


def _user(role: str | None):
    user = get_user_model().objects.create_user(f"user-{role or 'staff'}", password="pw-12345678",
                                                is_staff=True)
    if role:
        user.groups.add(roles_ensure()[role])
    return get_user_model().objects.get(pk=user.pk)


def test_a_superuser_opens_every_admin_page(objects):
    urls = concrete_urls(objects)
    assert len(urls) > 100  # the walk found the admin's pages
    results = {key: _opens(objects["superuser"], url) for key, url in urls.items()}
    refused = {key: status for key, (ok, status) in results.items() if not ok}
    # Beyond NOWHERE, only pages whose admin turns the permission off for everyone
    # (the consent log is read-only, subscribers are never added by hand, ...).
    request = RequestFactory().get("/admin/")
    request.user = objects["superuser"]
    for key in set(refused) - NOWHERE:
        label, kind = re.fullmatch(r"(\w+/\w+)/(?:<object_id>/)?(add|change|delete)/",
                                   key).groups()
        model = next(m for m in admin.site._registry
                     if f"{m._meta.app_label}/{m._meta.model_name}" == label)
        model_admin = admin.site._registry[model]
        obj = objects["rows"][model]
        allowed = (model_admin.has_add_permission(request) if kind == "add" else
                   model_admin.has_view_or_change_permission(request, obj) if kind == "change"
                   else model_admin.has_delete_permission(request, obj))
        assert not allowed, f"{key} refused to a superuser ({refused[key]})"
    assert NOWHERE <= set(refused)


@pytest.mark.parametrize("role", [None, AUTHOR, EDITOR, OPERATOR])
def test_each_role_opens_exactly_its_pages(objects, role):
    expected_pages, _actions = ROLE_EXPECTATIONS[role]
    user = _user(role)
    urls = concrete_urls(objects)
    opened = {key for key, url in urls.items() if _opens(user, url)[0]}
    assert opened - expected_pages == set(), "opened beyond the role"
    assert expected_pages - opened == set(), "refused within the role"


@pytest.mark.parametrize("role", [None, AUTHOR, EDITOR, OPERATOR])
def test_each_role_is_offered_exactly_its_actions(objects, role):
    _pages, expected = ROLE_EXPECTATIONS[role]
    request = RequestFactory().get("/admin/")
    request.user = _user(role)
    offered = {}
    for model, model_admin in admin.site._registry.items():
        if not model_admin.has_view_permission(request):
            continue
        names = set(model_admin.get_actions(request))
        if names:
            offered[model._meta.label_lower] = names
    assert offered == expected


def test_an_action_not_offered_is_refused_when_posted(objects):
    """Django runs only offered actions: an editor's export or erase does nothing."""
    editor = _user(EDITOR)
    client = Client()
    client.force_login(editor)
    rows = objects["rows"]
    client.post("/admin/newsletter/subscriber/", {
        "action": "erase", "_selected_action": [rows[Subscriber].pk]})
    assert Subscriber.objects.filter(pk=rows[Subscriber].pk, email="ann@example.org").exists()
    viewer = get_user_model().objects.create_user("viewer", password="pw-12345678",
                                                  is_staff=True)
    from django.contrib.auth.models import Permission

    viewer.user_permissions.add(*Permission.objects.filter(
        codename__in=["view_subscription", "view_mailinglist"]))
    client.force_login(viewer)
    client.post("/admin/newsletter/subscription/", {
        "action": "unsubscribe", "_selected_action": [rows[Subscription].pk]})
    assert Subscription.objects.get(pk=rows[Subscription].pk).status != "unsubscribed"
    response = client.post("/admin/newsletter/mailinglist/", {
        "action": "export_csv", "_selected_action": [rows[MailingList].pk]})
    assert "text/csv" not in response.get("Content-Type", "")


def test_the_preference_link_is_shown_only_to_who_may_export_erase_and_resubscribe(objects):
    rows = objects["rows"]
    url = f"/admin/newsletter/subscriber/{rows[Subscriber].pk}/change/"
    for role, shown in ((EDITOR, False), (OPERATOR, True)):
        client = Client()
        client.force_login(_user(role))
        page = client.get(url)
        assert page.status_code == 200
        assert ("/p/" in page.content.decode()) is shown, role


def test_roles_are_recreated_idempotently_with_exactly_their_permissions():
    from django.contrib.auth.models import Group, Permission
    from django.core.management import call_command

    call_command("ensure_roles")
    editor = Group.objects.get(name=EDITOR)
    editor.permissions.add(Permission.objects.get(codename="view_sink"))
    count = Group.objects.count()
    call_command("ensure_roles")
    assert Group.objects.count() == count
    assert not editor.permissions.filter(codename="view_sink").exists()
    assert {g.name for g in Group.objects.all()} >= {AUTHOR, EDITOR, OPERATOR}


def test_the_admin_home_links_only_the_service_pages_a_role_may_open(objects):
    pages = ("/admin/sink/", "/admin/report/", "/admin/breakers/", "/admin/reputation/checks/",
             "/admin/reputation/headers/", "/healthz/detail")
    for role, shown in ((EDITOR, ()), (OPERATOR, pages)):
        client = Client()
        client.force_login(_user(role))
        home = client.get("/admin/").content.decode()
        assert [p for p in pages if f'href="{p}"' in home] == list(shown), role


# The campaign's own action view (one URL, many POSTs): who may run which.
CAMPAIGN_ACTIONS = {AUTHOR: {"test", "duplicate"},
                    EDITOR: {"test", "duplicate", "schedule", "send_now", "unschedule",
                             "pause", "resume", "cancel"},
                    OPERATOR: set()}


@pytest.mark.parametrize("role", [AUTHOR, EDITOR, OPERATOR])
def test_campaign_actions_per_role_an_author_tests_but_never_schedules(objects, role):
    campaign = objects["rows"][Campaign]
    client = Client()
    client.force_login(_user(role))
    allowed = set()
    for action in sorted(CAMPAIGN_ACTIONS[EDITOR]):
        response = client.post(f"/admin/newsletter/campaign/{campaign.pk}/action/", {
            "action": action, "addresses": "qa@example.org", "when": "2031-07-01T09:15",
            "timezone": "UTC"})
        assert response.status_code in (302, 403), (action, response.status_code)
        if response.status_code == 302:
            allowed.add(action)
    assert allowed == CAMPAIGN_ACTIONS[role]
    assert Campaign.objects.get(pk=campaign.pk).state in ("draft", "cancelled")
