"""Cleaning of what people and files give us: addresses, names, attributes.

Used by the forms and by the importer, so both refuse the same things.
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy

from config.addresses import address_normalise
from newsletter.exceptions import InvalidAddress, InvalidInput

MAX_ADDRESS = 254
MAX_NAME = 200
MAX_ATTRIBUTE = 1000


# The common address shape (dot-atom local part, LDH labels, alphabetic TLD): a strict
# subset of what Django's EmailValidator accepts, checked in one regex match. Anything
# else goes through the full validator.
_COMMON_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,63}")


@lru_cache(maxsize=4096)
def _domain_ascii(domain: str) -> str:
    if domain.isascii():
        return domain.lower()
    try:
        return domain.encode("idna").decode("ascii").lower()
    except UnicodeError:
        raise InvalidAddress(_("The domain of this address is not valid.")) from None


def address_clean(raw: str) -> str:
    """The normalised address (``config.addresses.address_normalise``) or InvalidAddress.

    Lower case, IDNA domain; no spaces, line breaks or control characters; at
    most 254 characters.
    """
    value = (raw or "").strip()
    if len(value) <= MAX_ADDRESS and _COMMON_ADDRESS.fullmatch(value):
        return value.lower()  # ASCII only: the same as address_normalise, faster
    if not value:
        raise InvalidAddress(_("Enter an e-mail address."))
    if len(value) > MAX_ADDRESS or not value.isprintable() or " " in value:
        raise InvalidAddress(_("Enter a valid e-mail address."))
    local, at, domain = value.rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress(_("Enter a valid e-mail address."))
    _domain_ascii(domain)  # refuses a domain IDNA cannot encode
    normalised = address_normalise(value)
    if len(normalised) > MAX_ADDRESS:
        raise InvalidAddress(_("Enter a valid e-mail address."))
    try:
        validate_email(normalised)
    except ValidationError:
        raise InvalidAddress(_("Enter a valid e-mail address.")) from None
    return normalised


def _has_control(value: str) -> bool:
    return any(unicodedata.category(ch) in ("Cc", "Cs") for ch in value)


def text_clean(raw: str | None, *, max_length: int, what: str) -> str:
    """Stripped text without control characters (line breaks included), or InvalidInput.

    ``what`` names the field in the message (a lazy translation is fine).
    """
    value = (raw or "").strip()
    if len(value) <= max_length and value.isprintable():
        return value
    if len(value) > max_length:
        raise InvalidInput(_("%(what)s is longer than %(max)d characters.")
                           % {"what": what, "max": max_length})
    if not value.isprintable() and _has_control(value):
        raise InvalidInput(_("%(what)s contains line breaks or control characters.")
                           % {"what": what})
    return value


def name_clean(raw: str | None) -> str:
    return text_clean(raw, max_length=MAX_NAME, what=gettext_lazy("The name"))
