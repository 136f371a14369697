"""Tokens: hashed, scoped, revocable, rate limited; the admin's permissions apply."""

from __future__ import annotations

import pytest
from django.contrib.admin.models import LogEntry
from rest_framework.test import APIClient

from api.models import ApiToken
from api.tokens import token_for_key, token_revoke

pytestmark = pytest.mark.django_db


def test_anonymous_request_is_refused_as_a_problem():
    response = APIClient().get("/api/v1/subscribers/")
    assert response.status_code == 401
    assert response["Content-Type"] == "application/problem+json"
    assert response["WWW-Authenticate"].startswith("Bearer")
    body = response.json()
    assert body["status"] == 401 and body["title"] == "Not authenticated"
    assert body["instance"] == "/api/v1/subscribers/"


def test_unknown_or_malformed_token_is_refused():
    for header in ("Bearer pw_nothing_here", "Bearer x", "Bearer a b", "Bearer pw_"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=header)
        assert client.get("/api/v1/lists/").status_code == 401, header


def test_only_the_hash_is_stored(api):
    client = api()
    row = ApiToken.objects.get(pk=client.token.pk)
    assert client.key not in (row.prefix, row.key_sha256)
    assert client.key.split("_")[2] not in str(ApiToken.objects.values().get(pk=row.pk))
    assert token_for_key(client.key) == row
    assert token_for_key(client.key + "x") is None  # same prefix, wrong secret


def test_read_scope_reads_but_does_not_write(api, mailing_list):
    client = api(scopes=["read"])
    assert client.get("/api/v1/lists/").status_code == 200
    response = client.post("/api/v1/subscribers/", {"email": "a@example.org"}, format="json")
    assert response.status_code == 403
    assert response["Content-Type"] == "application/problem+json"


def test_write_scope_alone_does_not_read(api):
    client = api(scopes=["subscribers"])
    assert client.get("/api/v1/subscribers/").status_code == 403
    assert client.post("/api/v1/subscribers/", {"email": "a@example.org"},
                       format="json").status_code == 201


def test_transactional_scope_does_not_touch_subscribers(api):
    client = api(scopes=["transactional"])
    assert client.post("/api/v1/subscribers/", {"email": "a@example.org"},
                       format="json").status_code == 403
    assert client.post("/api/v1/suppressions/", {"address": "a@example.org"},
                       format="json").status_code == 403


def test_the_users_model_permissions_apply(api, mailing_list):
    viewer = api(scopes=["read", "subscribers"], superuser=False,
                 perms=["newsletter.view_mailinglist", "newsletter.view_subscriber"])
    assert viewer.get("/api/v1/lists/").status_code == 200
    assert viewer.get("/api/v1/subscribers/").status_code == 200
    # The token's scope allows writes; the user may not add subscribers in the admin.
    assert viewer.post("/api/v1/subscribers/", {"email": "a@example.org"},
                       format="json").status_code == 403
    assert viewer.get("/api/v1/suppressions/").status_code == 403  # no view_suppression
    adder = api(scopes=["subscribers"], superuser=False, perms=["newsletter.add_subscriber"])
    assert adder.post("/api/v1/subscribers/", {"email": "a@example.org"},
                      format="json").status_code == 201


def test_revoked_token_is_refused_at_once(api):
    client = api()
    assert client.get("/api/v1/lists/").status_code == 200
    assert token_revoke(client.token)
    assert client.get("/api/v1/lists/").status_code == 401
    assert not token_revoke(client.token)


def test_inactive_user_token_is_refused(api):
    client = api()
    client.user.is_active = False
    client.user.save()
    assert client.get("/api/v1/lists/").status_code == 401


def test_rate_limit_per_token(api, settings):
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK,
                               "DEFAULT_THROTTLE_RATES": {"token": "3/min"}}
    first, second = api(), api()
    for _ in range(3):
        assert first.get("/api/v1/lists/").status_code == 200
    refused = first.get("/api/v1/lists/")
    assert refused.status_code == 429
    assert refused["Content-Type"] == "application/problem+json"
    assert int(refused["Retry-After"]) > 0
    assert refused.json()["retry_after"] > 0
    assert second.get("/api/v1/lists/").status_code == 200  # counted per token


def test_admin_creates_token_shows_key_once_and_revokes(make_user, client):
    admin_user = make_user("boss", superuser=True)
    client.force_login(admin_user)
    response = client.post("/admin/api/apitoken/add/", {
        "user": admin_user.pk, "name": "shop", "scopes": ["read", "subscribers"],
        "expires_at_0": "", "expires_at_1": ""}, follow=True)
    assert response.status_code == 200
    token = ApiToken.objects.get(name="shop")
    assert token.scopes == ["read", "subscribers"]
    shown = [str(m) for m in response.context["messages"]]
    key = next(word for m in shown for word in m.split() if word.startswith("pw_"))
    assert token_for_key(key) == token
    api_client = APIClient()
    api_client.credentials(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert api_client.get("/api/v1/lists/").status_code == 200
    page = client.get(f"/admin/api/apitoken/{token.pk}/change/")
    assert key not in page.content.decode()
    client.post("/admin/api/apitoken/", {"action": "revoke", "_selected_action": [token.pk]})
    token.refresh_from_db()
    assert token.revoked_at is not None
    assert api_client.get("/api/v1/lists/").status_code == 401


def test_writes_are_in_the_admin_log(api):
    client = api()
    client.post("/api/v1/subscribers/", {"email": "a@example.org"}, format="json")
    entry = LogEntry.objects.get()
    assert entry.user == client.user and entry.object_repr == "a@example.org"
    assert client.token.name in entry.change_message


def test_wrong_tokens_are_limited_per_network_before_any_lookup(api, settings,
                                                               django_assert_num_queries):
    settings.API_FAILED_AUTH_PER_MIN = 3
    good = api()
    for n in range(3):
        guess = APIClient(REMOTE_ADDR="2001:db8:1:2::7")
        guess.credentials(HTTP_AUTHORIZATION=f"Bearer pw_abc{n}_guess")
        assert guess.get("/api/v1/lists/").status_code == 401
    # The same /64 with another host half, a fourth wrong key: refused unread.
    guess = APIClient(REMOTE_ADDR="2001:db8:1:2::99")
    guess.credentials(HTTP_AUTHORIZATION="Bearer pw_abc9_guess")
    with django_assert_num_queries(0):
        refused = guess.get("/api/v1/lists/")
    assert refused.status_code == 429 and int(refused["Retry-After"]) > 0
    assert refused["Content-Type"] == "application/problem+json"
    # Another network is not affected (a right token from the refused one waits too:
    # telling it apart would take the lookup the limit saves).
    other = APIClient(REMOTE_ADDR="2001:db8:1:3::7")
    other.credentials(HTTP_AUTHORIZATION="Bearer pw_abc1_guess")
    assert other.get("/api/v1/lists/").status_code == 401
    assert good.get("/api/v1/lists/", REMOTE_ADDR="2001:db8:1:3::7").status_code == 200
