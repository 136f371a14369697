"""Tokens in the admin: a token acts as its owner, so only a superuser makes one for another."""

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group

from api.models import ApiToken
from config.roles import OPERATOR, roles_ensure


@pytest.fixture
def operator(db):
    roles_ensure()
    user = get_user_model().objects.create_user("op", password="pw-op-1234567", is_staff=True)
    user.groups.add(Group.objects.get(name=OPERATOR))
    return user


def test_an_operator_cannot_make_a_token_for_a_superuser(client, operator):
    root = get_user_model().objects.create_superuser("root", "r@example.org", "pw-root-1234")
    client.force_login(operator)
    form = {"user": root.pk, "name": "mine now", "scopes": ["subscribers"]}
    page = client.post("/admin/api/apitoken/add/", form)
    assert page.status_code == 200 and b"Select a valid choice" in page.content
    assert not ApiToken.objects.exists()

    page = client.post("/admin/api/apitoken/add/", {**form, "user": operator.pk})
    assert page.status_code == 302
    assert ApiToken.objects.get().user == operator
