"""Fixtures of the API tests: users with the admin's permissions, tokens, a client."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from rest_framework.test import APIClient

from api.tokens import token_create
from newsletter.models import MailingList

ALL_SCOPES = ["read", "subscribers", "campaigns", "transactional"]


@pytest.fixture(autouse=True)
def clean_redis(redis_client):
    """Throttle windows and signup limits start empty."""
    return redis_client


@pytest.fixture(autouse=True)
def signups_stored_at_once(monkeypatch):
    from newsletter import conf

    monkeypatch.setattr(conf, "SIGNUP_ASYNC", False)


@pytest.fixture(autouse=True)
def fresh_list_cache():
    from api.selectors import lists_cache_clear as api_lists_clear
    from newsletter.selectors import lists_cache_clear

    lists_cache_clear()
    api_lists_clear()


@pytest.fixture
def make_user(db):
    def make(username="editor", perms=(), superuser=False):
        if superuser:
            return User.objects.create_superuser(username, f"{username}@example.org", "x")
        user = User.objects.create_user(username, f"{username}@example.org", "x", is_staff=True)
        for codename in perms:
            app, _, code = codename.partition(".")
            user.user_permissions.add(Permission.objects.get(
                content_type__app_label=app, codename=code))
        return User.objects.get(pk=user.pk)  # fresh permission cache
    return make


@pytest.fixture
def api(make_user):
    """``api(scopes, perms=..., superuser=...)``: a client with a new token for a new user."""
    count = [0]

    def make(scopes=ALL_SCOPES, perms=(), superuser=True):
        count[0] += 1
        user = make_user(f"user{count[0]}", perms=perms, superuser=superuser)
        token, key = token_create(user=user, name=f"token{count[0]}", scopes=list(scopes))
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
        client.token, client.key, client.user = token, key, user
        return client
    return make


@pytest.fixture
def mailing_list(db):
    return MailingList.objects.create(name="Shop News", slug="shop-news",
                                      from_email="news@shop.example")


@pytest.fixture
def bare_list(db):
    """A list with every optional field empty (answers must still match the schema)."""
    return MailingList.objects.create(name="Plain", slug="plain")
