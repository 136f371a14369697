"""Foreign merge tags and personalisation errors: each says what to write instead and
names the allowed fields and filters, in the campaign's checklist."""

from __future__ import annotations

import pytest

from newsletter.campaigns import campaign_checklist, campaign_errors
from newsletter.personalisation import personalisation_problem
from tests.newsletter.test_campaigns import (  # noqa: F401 - fixtures
    audience,
    campaign,
    layout,
    make_campaign,
    no_mx_lookups,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

ALLOWED_NAMED = ("subscriber.name", "subscriber.attributes.<key>", "unsubscribe_url",
                 'default:"…"')


@pytest.mark.parametrize(("source", "kind", "instead"), [
    ("Hi *|FNAME|*,", "Mailchimp merge tag", "{{ subscriber.name }}"),
    ("<a href='*|UNSUB|*'>out</a>", "Mailchimp merge tag", "{{ unsubscribe_url }}"),
    ("From *|CITY|*", "Mailchimp merge tag", "{{ subscriber.attributes.city }}"),
    ("Dear %%FirstName%%", "%%…%% merge tag", "{{ subscriber.name }}"),
    ("Your plan: %%plan%%", "%%…%% merge tag", "{{ subscriber.attributes.plan }}"),
    ("Hello [[name]]!", "[[…]] merge tag", "{{ subscriber.name }}"),
    ("Mail: [[ email ]]", "[[…]] merge tag", "{{ subscriber.email }}"),
])
def test_foreign_merge_tags_say_what_to_write_instead(source, kind, instead):
    problem = personalisation_problem(source)
    assert problem is not None
    assert kind in problem and f"Write {instead} instead" in problem
    assert all(name in problem for name in ALLOWED_NAMED)


@pytest.mark.parametrize("source", [
    "{% if subscriber.name %}Hi{% endif %}",
    "{% for x in items %}{{ x }}{% endfor %}",
    "{%- raw -%}",
    "{% load static %}",
    "{% trans 'hi' %}",
])
def test_block_tags_are_refused_with_the_default_filter_as_the_way_out(source):
    problem = personalisation_problem(source)
    assert problem is not None and "block tag" in problem
    assert 'default:"reader"' in problem and "audience filter" in problem
    assert all(name in problem for name in ALLOWED_NAMED)


def test_listmonk_go_syntax_is_translated():
    problem = personalisation_problem("Hi {{ .Subscriber.Name }} from "
                                      "{{ .Subscriber.Attribs.city }}")
    assert "listmonk" in problem and "{{ subscriber.name }}" in problem


@pytest.mark.parametrize(("source", "named"), [
    ("{{ subscriber.name|upper }}", "'upper' is not supported"),
    ('{{ subscriber.name|default:"x"|title }}', "'title' is not supported"),
    ("{{ first_name }}", "unknown field 'first_name'"),
    ("{{ first_name }}", "Write {{ subscriber.name }} instead"),
    ("{{ subscriber.name", "unclosed"),
])
def test_every_personalisation_error_names_allowed_fields_and_filters(source, named):
    problem = personalisation_problem(source)
    assert named in problem
    assert all(name in problem for name in ALLOWED_NAMED)


@pytest.mark.parametrize("source", [
    "Hi {{ subscriber.name|default:\"reader\" }}, 100% sure, 50%% off? [link](http://x) "
    "[[ ]] *|| a { %} b",
    "{{ subscriber.attributes.city }} {{ unsubscribe_url }} {{ preferences_url }}",
    "",
])
def test_valid_personalisation_and_ordinary_text_pass(source):
    assert personalisation_problem(source) is None


def test_a_mailchimp_tag_fails_the_checklist_with_the_fix(campaign):  # noqa: F811
    campaign.body = "Hello *|FNAME|*, news from {{ subscriber.attributes.city }}."
    campaign.save()
    assert "Write {{ subscriber.name }} instead" in campaign_errors(campaign)["body"]
    check = next(c for c in campaign_checklist(campaign)
                 if c.name == "Body and personalisation are valid")
    assert not check.ok and check.blocking
    assert "*|FNAME|*" in check.detail and "{{ subscriber.name }}" in check.detail


def test_subject_with_an_unsupported_filter_is_named(campaign):  # noqa: F811
    campaign.subject = "Hi {{ subscriber.name|upper }}"
    error = campaign_errors(campaign)["subject"]
    assert "at character 3" in error and "'upper' is not supported" in error
    assert "Allowed fields" in error


def test_a_foreign_tag_in_a_layout_is_refused(db):
    from newsletter.campaign_render import DEFAULT_LAYOUT_HTML
    from newsletter.campaigns import layout_validate
    from newsletter.models import Layout

    foreign = Layout(html=DEFAULT_LAYOUT_HTML.replace("Unsubscribe", "*|UNSUB|*"),
                     postal_address="Shop, Main St 1")
    problems = layout_validate(foreign)
    assert any("Write {{ unsubscribe_url }} instead" in p for p in problems)
    assert layout_validate(Layout(html=DEFAULT_LAYOUT_HTML, postal_address="Shop")) == []
