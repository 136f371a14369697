"""Signed links: confirm, unsubscribe and preferences.

Tokens are ``django.core.signing`` signatures over an id, each with its own
salt, so one kind can never be used as another and none can be forged or
altered without the secret key. Nothing is stored: checking a token needs no
database lookup.

The signing key is the ``links`` key derived from ``SECRET_KEY``
(``config.keys``), not the secret key itself. Readers accept the keys derived
from ``SECRET_KEY_FALLBACKS`` too (rotation), and, for links mailed before the
derived key existed, signatures made with the secret key or a fallback itself.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re

from django.conf import settings
from django.core import signing

from config import keys
from newsletter import conf

_CONFIRM = "newsletter.confirm"
_UNSUBSCRIBE = "newsletter.unsubscribe"
_PREFERENCES = "newsletter.preferences"
# Fresh links mailed on request for the two acts a preference link (which lives
# for months in every mail, and is forwarded with it) must not allow alone.
PRIVACY_ACTIONS = {"export": "newsletter.export", "erase": "newsletter.erase"}


class _KeyedMixin:
    """Django's signature, with the derived HMAC key computed once per signer rather
    than per call (a campaign signs two links for every recipient). Same bytes out."""

    def signature(self, value, key=None):
        if key is not None and key != self.key:
            return super().signature(value, key)  # a fallback key, while unsigning
        proto = self.__dict__.get("_proto")
        if proto is None:
            derived = hashlib.sha256(f"{self.salt}signer{self.key}".encode()).digest()
            proto = self._proto = hmac.new(derived, digestmod=hashlib.sha256)
        mac = proto.copy()
        mac.update(value.encode())
        return signing.b64_encode(mac.digest()).decode()


class _Signer(_KeyedMixin, signing.Signer):
    pass


class _TimestampSigner(_KeyedMixin, signing.TimestampSigner):
    pass


def _signer(cls, salt: str, secret: str, fallbacks: list[str]):
    """A signer keyed with the derived links key; it also reads the fallbacks' tokens."""
    secrets = [secret, *(f for f in fallbacks if f and f != secret)]
    derived = [keys.derive(keys.LINKS, s).hex() for s in secrets]
    # Links mailed before the derived key existed were signed with the secret itself.
    return cls(salt=salt, key=derived[0], fallback_keys=derived[1:] + secrets)


_signers: dict[tuple, tuple[list[str], signing.Signer]] = {}


def _current(cls, salt: str):
    """The signer for the settings now, made once per process (and again when they change)."""
    secret, fallbacks = settings.SECRET_KEY, settings.SECRET_KEY_FALLBACKS
    entry = _signers.get((cls, salt, secret))
    if entry is None or entry[0] != fallbacks:
        if len(_signers) > 32:  # settings changed many times (tests): start afresh
            _signers.clear()
        entry = _signers[(cls, salt, secret)] = (list(fallbacks), _signer(
            cls, salt, secret, fallbacks))
    return entry[1]


def _sign(cls, salt: str, value: str) -> str:
    return _current(cls, salt).sign(value)


class TokenInvalid(Exception):
    """Forged, altered or malformed."""


class TokenExpired(TokenInvalid):
    """Genuine but too old."""


def _unsign_id(token: str, salt: str, max_age_days: int | None, *,
               max_age_s: int | None = None) -> int:
    try:
        if max_age_days is None and max_age_s is None:
            value = _current(_Signer, salt).unsign(token)
        else:
            value = _current(_TimestampSigner, salt).unsign(
                token, max_age=max_age_s if max_age_s is not None else max_age_days * 86400)
    except signing.SignatureExpired as exc:
        raise TokenExpired(str(exc)) from None
    except signing.BadSignature as exc:
        raise TokenInvalid(str(exc)) from None
    if not value.isdigit():
        raise TokenInvalid("not an id")
    return int(value)


def confirm_token(subscription_id: int) -> str:
    return _sign(_TimestampSigner, _CONFIRM, str(subscription_id))


def confirm_token_read(token: str) -> int:
    return _unsign_id(token, _CONFIRM, conf.CONFIRM_LINK_MAX_AGE_DAYS)


def unsubscribe_token(subscription_id: int) -> str:
    """Never expires: an unsubscribe link must work in any mail ever sent."""
    return _sign(_Signer, _UNSUBSCRIBE, str(subscription_id))


def unsubscribe_token_read(token: str) -> int:
    return _unsign_id(token, _UNSUBSCRIBE, None)


def preferences_token(subscriber_id: int) -> str:
    return _sign(_TimestampSigner, _PREFERENCES, str(subscriber_id))


def preferences_token_read(token: str) -> int:
    return _unsign_id(token, _PREFERENCES, conf.PREFERENCES_LINK_MAX_AGE_DAYS)


def privacy_token(subscriber_id: int, action: str) -> str:
    """A fresh link for ``export`` or ``erase``, mailed on request from the preference page."""
    return _sign(_TimestampSigner, PRIVACY_ACTIONS[action], str(subscriber_id))


def privacy_token_read(token: str, action: str) -> int:
    return _unsign_id(token, PRIVACY_ACTIONS[action], None,
                      max_age_s=conf.PRIVACY_LINK_MAX_AGE_MINUTES * 60)


# --- mailto unsubscribe (RFC 2369) -------------------------------------------------
# The local part of ``unsubscribe+<token>@<domain>``: the subscription id in base 36
# and 16 base-32 characters (80 bits) of an HMAC, all lower case because some MTAs
# fold local parts. Own derived key (config.keys, purpose ``unsubscribe-mailto``),
# so it rotates with the secret key and its fallbacks like every other token.
_MAILTO = "unsubscribe-mailto"
_MAILTO_SHAPE = re.compile(r"^([0-9a-z]{1,13})-([a-z2-7]{16})$")


def _mailto_mac(subscription_id: int, key: bytes) -> str:
    mac = hmac.new(key, str(subscription_id).encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()[:10]).decode().lower()


def _base36(number: int) -> str:
    digits, out = "0123456789abcdefghijklmnopqrstuvwxyz", ""
    while True:
        number, rest = divmod(number, 36)
        out = digits[rest] + out
        if not number:
            return out


def unsubscribe_mailto_token(subscription_id: int) -> str:
    """Never expires, like the unsubscribe link: it may be used years later."""
    if subscription_id < 0:
        raise ValueError("subscription id must be positive")
    return f"{_base36(subscription_id)}-{_mailto_mac(subscription_id, keys.current(_MAILTO))}"


def unsubscribe_mailto_token_read(token: str) -> int:
    match = _MAILTO_SHAPE.match(token.strip().lower())
    if not match:
        raise TokenInvalid("not a mailto unsubscribe token")
    subscription_id = int(match.group(1), 36)
    for key in keys.accepted(_MAILTO):  # current key, then the fallbacks
        if hmac.compare_digest(_mailto_mac(subscription_id, key), match.group(2)):
            return subscription_id
    raise TokenInvalid("bad signature")


# --- test sends ---------------------------------------------------------------------
# The links of a campaign's test send (newsletter.testsend): its own derived key
# (config.keys, purpose ``test-mail``) and salt, so no test token is ever read as an
# unsubscribe, preference or tracking token, and none of those as a test token.
_TEST_MAIL = "newsletter.test-mail"
TEST_LINK_MAX_AGE_DAYS = 90


def test_link_token(payload: dict) -> str:
    """A signed, dated token over a small JSON payload (the link's kind, a click's target)."""
    return signing.dumps(payload, key=keys.current(keys.TEST_MAIL).hex(), salt=_TEST_MAIL,
                         compress=True)


def test_link_token_read(token: str) -> dict:
    """The payload, or TokenInvalid / TokenExpired; every key still accepted reads it."""
    accepted = [key.hex() for key in keys.accepted(keys.TEST_MAIL)]
    try:
        payload = signing.loads(token, key=accepted[0], fallback_keys=accepted[1:],
                                salt=_TEST_MAIL, max_age=TEST_LINK_MAX_AGE_DAYS * 86400)
    except signing.SignatureExpired as exc:
        raise TokenExpired(str(exc)) from None
    except (signing.BadSignature, ValueError) as exc:
        raise TokenInvalid(str(exc)) from None
    if not isinstance(payload, dict):
        raise TokenInvalid("not a test link")
    return payload
