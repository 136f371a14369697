"""The audience builder in the campaign form: the widget, the live count endpoint, saving."""

from __future__ import annotations

import json

import pytest

from newsletter.models import Campaign, MailingList, Subscriber, Subscription
from tests.newsletter.test_campaign_admin import (  # noqa: F401 - fixtures
    Browser,
    _form,
    _user,
    editor,
    quiet,
    setup,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
COUNT = "/admin/newsletter/campaign/audience-count/"


@pytest.fixture
def town(mailing_list, setup):  # noqa: F811
    for email, city in (("bea@example.org", "BERLIN"), ("cem@example.org", "Hamburg"),
                        ("dan@example.org", "Berlingen")):
        subscriber = Subscriber.objects.create(email=email, attributes={"City": city})
        Subscription.objects.create(subscriber=subscriber, mailing_list=mailing_list,
                                    status="confirmed")
    return mailing_list


def _count(browser, mailing_list, segment, **extra):
    response = browser.get(COUNT, data={"lists": [mailing_list.pk],
                                        "segment_attributes": json.dumps(segment), **extra})
    return response.status_code, response.json()


def test_the_live_count_follows_the_rules_before_saving(editor, town):  # noqa: F811
    contains = {"match": "all", "rules": [{"attribute": "city", "op": "contains",
                                           "value": "berl"}]}
    assert _count(editor, town, contains) == (200, {"count": 3})  # ann, bea, dan
    assert _count(editor, town, {"City": "berlin"}) == (200, {"count": 2})
    assert _count(editor, town, {}) == (200, {"count": 4})
    empty = MailingList.objects.create(name="Empty", slug="empty")
    assert _count(editor, empty, {}) == (200, {"count": 0})
    status, body = _count(editor, town, {"match": "all", "rules": [
        {"attribute": "city", "op": "like", "value": "x"}]})
    assert status == 400 and "unknown operator" in body["error"]
    status, body = _count(editor, town, {}, subscribed_after_0="2999-01-01",
                          subscribed_after_1="00:00")
    assert (status, body) == (200, {"count": 0})


def test_the_count_needs_the_campaign_change_permission(town, db):
    outsider = Browser(_user("olga", group=False, perms=["view_campaign"]))
    assert outsider.get(COUNT, data={"lists": [town.pk]}).status_code == 403
    author = Browser(_user("andy", group=False, perms=["view_campaign", "change_campaign"]))
    assert author.get(COUNT, data={"lists": [town.pk]}).status_code == 200


def test_the_form_offers_known_keys_and_saves_rules(editor, town, setup):  # noqa: F811
    page = editor.get("/admin/newsletter/campaign/add/").content.decode()
    assert 'class="pw-audience"' in page and 'data-count-url="' + COUNT + '"' in page
    assert '<option value="City">' in page and '<option value="city">' in page
    assert "newsletter/audience.js" in page
    segment = {"match": "any", "rules": [
        {"attribute": "city", "op": "contains", "value": "berl", "case_sensitive": False},
        {"attribute": "plan", "op": "in", "value": "pro, team", "case_sensitive": False}]}
    response = editor.post("/admin/newsletter/campaign/add/", _form(
        None, town, segment_attributes=json.dumps(segment)))
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = Campaign.objects.get(name="Autumn").segment_attributes
    assert stored["match"] == "any" and stored["rules"][1]["value"] == ["pro", "team"]


def test_an_old_campaign_shows_its_filter_as_rules(editor, setup):  # noqa: F811
    campaign = setup["campaign"]
    Campaign.objects.filter(pk=campaign.pk).update(segment_attributes={"city": "Berlin"})
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert "&quot;op&quot;: &quot;equals&quot;" in page


def test_a_malformed_filter_is_refused_on_save(editor, mailing_list, setup):  # noqa: F811
    response = editor.post("/admin/newsletter/campaign/add/", _form(
        None, mailing_list, segment_attributes=json.dumps(
            {"rules": [{"attribute": "ci ty", "op": "equals", "value": "x"}]})))
    assert response.status_code == 200 and "letters, digits" in response.content.decode()
    assert not Campaign.objects.filter(name="Autumn").exists()
