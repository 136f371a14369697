"""Writes the API makes that the newsletter services do not already offer.

Signup, confirmation, unsubscribe and erasure are ``newsletter.services``'s
own functions, called as they are (one code path with the forms); only
creating and editing a bare subscriber record lives here.
"""

from __future__ import annotations

import json
import math

from django.db import transaction

from newsletter.exceptions import InvalidInput
from newsletter.models import Subscriber
from newsletter.validation import MAX_ATTRIBUTE, address_clean, name_clean, text_clean

MAX_ATTRIBUTES = 100
MAX_ATTRIBUTES_BYTES = 16 * 1024
MAX_KEY = 64


def attributes_clean(value) -> dict:
    """A flat JSON object: short printable keys, scalar values, at most 16 KiB in all.

    Strings are cleaned like names (no control characters: PostgreSQL's jsonb refuses
    NUL), so templates and exports never meet anything odd.
    """
    if not isinstance(value, dict):
        raise InvalidInput("attributes must be a JSON object")
    if len(value) > MAX_ATTRIBUTES:
        raise InvalidInput(f"at most {MAX_ATTRIBUTES} attributes")
    cleaned = {}
    for key, item in value.items():
        key = text_clean(str(key), max_length=MAX_KEY, what="An attribute name")
        if not key:
            raise InvalidInput("attribute names must not be empty")
        if isinstance(item, str):
            item = text_clean(item, max_length=MAX_ATTRIBUTE, what=f"Attribute {key}")
        elif item is not None and not isinstance(item, bool | int | float):
            raise InvalidInput(f"attribute {key}: only text, numbers, true/false or null")
        elif isinstance(item, int) and not isinstance(item, bool) and abs(item) >= 2**53:
            raise InvalidInput(f"attribute {key}: number out of range")
        elif isinstance(item, float) and not math.isfinite(item):
            raise InvalidInput(f"attribute {key}: not a finite number")
        cleaned[key] = item
    if len(json.dumps(cleaned, ensure_ascii=False).encode("utf-8")) > MAX_ATTRIBUTES_BYTES:
        raise InvalidInput(f"attributes are limited to {MAX_ATTRIBUTES_BYTES} bytes")
    return cleaned


def subscriber_create(*, email: str, name: str = "", attributes: dict | None = None
                      ) -> tuple[Subscriber, bool]:
    """The subscriber with this address (created if new); it is on no list by this alone."""
    address = address_clean(email)
    with transaction.atomic():
        subscriber, created = Subscriber.objects.get_or_create(
            email=address, defaults={"name": name_clean(name),
                                     "attributes": attributes_clean(attributes or {})})
    return subscriber, created


def subscriber_update(*, subscriber: Subscriber, name: str | None = None,
                      attributes: dict | None = None, merge: bool = False) -> Subscriber:
    """Change the name and attributes; ``merge`` adds keys (a ``null`` value removes one)."""
    fields = []
    if name is not None:
        subscriber.name = name_clean(name)
        fields.append("name")
    if attributes is not None:
        if merge:
            merged = {**subscriber.attributes, **attributes}
            attributes = {k: v for k, v in merged.items() if v is not None}
        subscriber.attributes = attributes_clean(attributes)
        fields.append("attributes")
    if fields:
        subscriber.save(update_fields=[*fields, "updated_at"])
    return subscriber
