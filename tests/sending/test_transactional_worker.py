"""One mail through a real Celery worker on the transactional queue, to the sink."""

import pytest

from sending.models import TransactionalEmail
from sending.sink import sink_messages
from sending.transactional import transactional_email_deliver, transactional_email_send
from tests.helpers import wait_until


@pytest.mark.django_db(transaction=True)
def test_worker_sends_through_relay_to_sink(smtp_sink, celery_worker_factory):
    celery_worker_factory("transactional", name="transactional")
    email = transactional_email_send(
        to="reader@example.org", subject="Please confirm", body_text="Click the link.\n",
        body_html="<p>Click the <a href='https://x.test'>link</a>.</p>",
    )
    stored = wait_until(lambda: sink_messages(smtp_sink.directory), timeout=20)
    assert len(stored) == 1
    message = stored[0]
    assert message.rcpt_to == "reader@example.org"
    assert message.subject == "Please confirm"
    assert "Click the link." in message.text
    assert "<a href=" in message.html
    email.refresh_from_db()
    assert email.state == TransactionalEmail.State.SENT
    assert email.message_id == message.message["Message-ID"]


@pytest.mark.django_db(transaction=True)
def test_redelivered_task_sends_nothing_twice(smtp_sink):
    email = transactional_email_send(to="a@example.org", subject="s", body_text="t")
    assert transactional_email_deliver(email.id) == "sent"
    assert transactional_email_deliver(email.id) == "nothing-to-do"
    assert len(sink_messages(smtp_sink.directory)) == 1


@pytest.mark.django_db(transaction=True)
def test_relay_down_defers_instead_of_failing(settings, smtp_sink):
    from config.redis_server import free_port

    settings.DEFAULT_RELAY_URL = f"smtp://127.0.0.1:{free_port()}"  # nothing listens
    email = transactional_email_send(to="a@example.org", subject="s", body_text="t")
    assert transactional_email_deliver(email.id) == "deferred"
    email.refresh_from_db()
    assert email.next_attempt_at is not None and "127.0.0.1" in email.last_reply


def test_header_injection_is_refused():
    with pytest.raises(ValueError, match="line breaks"):
        transactional_email_send(to="a@example.org", subject="hi\r\nBcc: x@y", body_text="t")
