"""The admin page that lists and shows what the local SMTP sink received."""

import smtplib

import pytest
from django.urls import reverse

from sending.sink import sink_messages
from tests.helpers import wait_until

MESSAGE = (
    "From: News <news@example.org>\r\nTo: reader@example.org\r\nSubject: Hello sink\r\n"
    "MIME-Version: 1.0\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n"
    "--b\r\nContent-Type: text/plain\r\n\r\nplain words\r\n"
    "--b\r\nContent-Type: text/html\r\n\r\n<p>html <b>words</b></p>\r\n--b--\r\n"
)


@pytest.mark.django_db
def test_sink_pages_list_and_show_messages(client, admin_user, smtp_sink):
    with smtplib.SMTP("127.0.0.1", smtp_sink.port) as session:
        session.sendmail("bounce@example.org", ["reader@example.org"], MESSAGE.encode())
    wait_until(lambda: sink_messages(smtp_sink.directory))

    assert client.get(reverse("sink-list")).status_code == 302  # login required
    client.force_login(admin_user)
    page = client.get(reverse("sink-list")).content.decode()
    assert "Hello sink" in page and "reader@example.org" in page
    key = sink_messages(smtp_sink.directory)[0].key
    detail = client.get(reverse("sink-detail", args=[key])).content.decode()
    assert "plain words" in detail
    assert "&lt;b&gt;words&lt;/b&gt;" in detail  # HTML shown escaped in a sandboxed iframe
    assert "X-Sink-Mail-From" in detail and "bounce@example.org" in detail
    assert client.get(reverse("sink-detail", args=["nope"])).status_code == 404
