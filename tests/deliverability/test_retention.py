"""Raw bounces are dropped after their retention period; their events and keys stay."""

import zlib
from datetime import timedelta

import pytest
from django.utils import timezone

from deliverability.models import BounceEvent, InboundMessage
from deliverability.retention import prune_raw_messages


@pytest.mark.django_db
def test_old_raw_messages_are_emptied_but_events_kept():
    raw = b"From: mailer-daemon@example.org\r\n\r\nUser unknown\r\n"
    old = InboundMessage.objects.create(key="a" * 64, raw_compressed=zlib.compress(raw),
                                        size=len(raw), source="smtp")
    InboundMessage.objects.filter(id=old.id).update(received_at=timezone.now()
                                                    - timedelta(days=31))
    new = InboundMessage.objects.create(key="b" * 64, raw_compressed=zlib.compress(raw),
                                        size=len(raw), source="smtp")
    BounceEvent.objects.create(message=old, kind="hard", address="x@example.org")
    assert prune_raw_messages(days=30) == 1
    old.refresh_from_db()
    new.refresh_from_db()
    assert old.raw == b"" and old.key == "a" * 64 and old.events.count() == 1
    assert new.raw == raw
    assert prune_raw_messages(days=30) == 0
