"""The operators' page of provider breakers: states, reasons, and actions by hand."""

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from deliverability.breaker.engine import Breaker
from deliverability.models import BreakerTransition

SWISSCOM = "5.7.1 Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail"


@pytest.fixture
def breaker(redis_client, db):
    return Breaker(redis=redis_client, time_scale=1.0)


def test_page_lists_a_stopped_provider_with_reason_and_delisting_form(admin_client, breaker):
    breaker.record(provider="swisscom", pool="bulk", code=554, text=SWISSCOM)
    page = admin_client.get(reverse("breaker-list")).content.decode()
    assert "Swisscom (Bluewin)" in page and "manual" in page
    assert "You are not allowed to send us mail" in page
    assert "ok &rarr; manual" in page
    # Probing cannot help before the delisting form is filed: the page says so, with it.
    assert "File the provider&#x27;s delisting form for this IP" in page
    assert ('class="breaker-action-link" href="https://postmaster.bluewin.ch/"' in page
            and "Open the delisting form" in page)
    assert 'value="acknowledge"' in page


def test_page_lists_a_paused_provider(admin_client, breaker):
    breaker.record(provider="united_internet", pool="bulk", code=554,
                   text="IP address is block listed. For explanation visit "
                        "https://postmaster.gmx.net/en/case?c=r0201")
    page = admin_client.get(reverse("breaker-list")).content.decode()
    assert "ok &rarr; paused" in page and "breaker-action-link" not in page


def test_operator_pauses_and_resumes_with_csrf(admin_user, breaker):
    client = Client(enforce_csrf_checks=True)
    client.force_login(admin_user)
    page = client.get(reverse("breaker-list"))
    token = page.cookies["csrftoken"].value
    url = reverse("breaker-action")
    assert client.post(url, {"action": "pause", "provider": "google", "pool": "bulk",
                             "hours": "2"}).status_code == 403  # no CSRF token
    response = client.post(url, {"action": "pause", "provider": "google", "pool": "bulk",
                                 "hours": "2", "csrfmiddlewaretoken": token})
    assert response.status_code == 302
    assert not breaker.decide("google", "bulk").allowed
    client.post(url, {"action": "resume", "provider": "google", "pool": "bulk",
                      "csrfmiddlewaretoken": token})
    assert breaker.decide("google", "bulk").allowed
    actors = set(BreakerTransition.objects.values_list("actor", flat=True))
    assert actors == {admin_user.username}


def test_staff_without_the_permission_cannot_act(client, breaker):
    editor = User.objects.create_user("editor", password="x-long-password-1", is_staff=True)
    client.force_login(editor)
    assert client.get(reverse("breaker-list")).status_code == 403  # not even the page
    from django.contrib.auth.models import Permission

    editor.user_permissions.add(Permission.objects.get(codename="view_breakertransition"))
    editor = User.objects.get(pk=editor.pk)  # no cached permissions
    client.force_login(editor)
    assert client.get(reverse("breaker-list")).status_code == 200
    response = client.post(reverse("breaker-action"),
                           {"action": "pause", "provider": "google", "pool": "bulk"})
    assert response.status_code == 403
    assert breaker.decide("google", "bulk").allowed


def test_bad_hours_are_refused_clearly(admin_client, breaker):
    response = admin_client.post(reverse("breaker-action"), {
        "action": "pause", "provider": "google", "pool": "bulk", "hours": "lots"}, follow=True)
    assert "Hours must be a number" in response.content.decode()
    assert breaker.keys() == []


def test_anonymous_users_are_sent_to_login(client):
    response = client.get(reverse("breaker-list"))
    assert response.status_code == 302 and "/login/" in response["Location"]
