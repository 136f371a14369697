"""Fixtures of the newsletter tests: a list, a clean Redis, signup helpers."""

from __future__ import annotations

import pytest
from django.test import Client

from newsletter.models import MailingList


@pytest.fixture(autouse=True)
def clean_redis(redis_client):
    """Every test starts with empty rate-limit windows."""
    return redis_client


@pytest.fixture(autouse=True)
def fresh_list_cache():
    """Lists are cached per process by slug; each test's database starts anew."""
    from newsletter.selectors import lists_cache_clear

    lists_cache_clear()


@pytest.fixture(autouse=True)
def signups_stored_at_once(monkeypatch):
    """Signups are stored in the request here; test_signup_queue.py covers the worker path."""
    from newsletter import conf

    monkeypatch.setattr(conf, "SIGNUP_ASYNC", False)


@pytest.fixture
def client():
    """A test client that checks CSRF like a real deployment does."""
    return Client(enforce_csrf_checks=True)


@pytest.fixture
def mailing_list(db):
    return MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_email="news@shop.example")


@pytest.fixture
def signup_post(client, mailing_list):
    """POST the signup form as a browser would (CSRF token from the page)."""

    def post(email="ann@example.org", name="Ann", ip="198.51.100.7", slug=None, meta=None,
             **extra):
        slug = slug or mailing_list.slug
        page = client.get(f"/s/{slug}/", REMOTE_ADDR=ip)
        data = {"email": email, "name": name, "consent": "on",
                "csrfmiddlewaretoken": str(page.context["csrf_token"]),
                "consent_version": page.context["consent"].id, "website": ""}
        data.update(extra)
        headers = {"REMOTE_ADDR": ip, "HTTP_USER_AGENT": "Mozilla/5.0 (test)", **(meta or {})}
        return client.post(f"/s/{slug}/", data, **headers)

    return post
