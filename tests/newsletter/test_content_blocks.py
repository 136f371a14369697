"""Reusable content blocks: the admin checks their personalisation like a body's, and the
toolbar's choices endpoint lists them for whoever may see them."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from django.urls import reverse

from config.roles import AUTHOR, EDITOR, OPERATOR, roles_ensure
from newsletter.campaigns import campaign_errors
from newsletter.models import Campaign, ContentBlock

pytestmark = pytest.mark.django_db
CHOICES = "/admin/newsletter/contentblock/choices/"


def login(role: str | None) -> Client:
    user = get_user_model().objects.create_user(f"u-{role or 'staff'}", password="pw-12345678",
                                                is_staff=True)
    if role:
        user.groups.add(roles_ensure()[role])
    client = Client()
    client.force_login(user)
    return client


def test_the_choices_list_every_block_by_name_with_its_source_and_html():
    ContentBlock.objects.create(name="Signature", body="Yours, **Ann**")
    ContentBlock.objects.create(name="Offer box", body_format="html",
                                body='<p class="offer">10 % off, {{ subscriber.name }}</p>')
    answer = login(AUTHOR).get(CHOICES)
    assert answer.status_code == 200
    assert answer.json() == [
        {"id": ContentBlock.objects.get(name="Offer box").id, "name": "Offer box",
         "body": '<p class="offer">10 % off, {{ subscriber.name }}</p>', "body_format": "html",
         "html": '<p class="offer">10 % off, {{ subscriber.name }}</p>'},
        {"id": ContentBlock.objects.get(name="Signature").id, "name": "Signature",
         "body": "Yours, **Ann**", "body_format": "markdown",
         "html": "<p>Yours, <strong>Ann</strong></p>"},
    ]


@pytest.mark.parametrize("role", [None, OPERATOR])
def test_who_may_not_see_blocks_gets_403(role):
    ContentBlock.objects.create(name="Secret plan", body="x")
    answer = login(role).get(CHOICES)
    assert answer.status_code == 403 and "Secret plan" not in answer.content.decode()


def test_an_anonymous_request_goes_to_the_login():
    answer = Client().get(CHOICES)
    assert answer.status_code == 302 and "/admin/login/" in answer["Location"]


@pytest.mark.parametrize(("body", "message"), [
    ("Hi *|FNAME|*", "Mailchimp merge tag"),
    ("{% if subscriber.name %}x{% endif %}", "template block tag"),
    ("{{ settings.SECRET_KEY }}", "Allowed fields"),
    ("Click {{ track.1 }}", "filled in by click tracking"),
    ("   ", "This field is required"),
])
def test_a_block_with_bad_personalisation_is_refused_with_the_fix(body, message):
    client = login(AUTHOR)
    page = client.post(reverse("admin:newsletter_contentblock_add"),
                       {"name": "Greeting", "body_format": "markdown", "body": body})
    assert page.status_code == 200 and message in page.content.decode()
    assert not ContentBlock.objects.exists()


def test_an_author_writes_a_block_and_it_is_valid_in_a_body():
    client = login(AUTHOR)
    body = 'Thanks, {{ subscriber.name|default:"reader" }}! [Your settings]({{ preferences_url }})'
    done = client.post(reverse("admin:newsletter_contentblock_add"),
                       {"name": "Thanks", "body_format": "markdown", "body": body})
    assert done.status_code == 302
    block = ContentBlock.objects.get()
    assert block.created_by.username == "u-author"
    inserted = client.get(CHOICES).json()[0]["body"]
    campaign = Campaign(name="x", subject="s", body=f"# News\n\n{inserted}")
    assert campaign_errors(campaign) == {}


def test_block_names_are_unique():
    client = login(EDITOR)
    ContentBlock.objects.create(name="Footer", body="x")
    page = client.post(reverse("admin:newsletter_contentblock_add"),
                       {"name": "Footer", "body_format": "html", "body": "<p>y</p>"})
    assert "already exists" in page.content.decode()
    assert ContentBlock.objects.count() == 1
