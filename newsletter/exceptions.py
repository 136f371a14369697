"""Errors of the newsletter app; each also subclasses the built-in it resembles."""

from __future__ import annotations


class NewsletterError(Exception):
    """Root of this app's errors."""


class InvalidAddress(NewsletterError, ValueError):
    """The e-mail address is malformed, too long, or its domain takes no mail."""


class InvalidInput(NewsletterError, ValueError):
    """A field holds something we refuse to store (control characters, too long...)."""


class SignupRateLimited(NewsletterError):
    """Too many signups from this client or for this list; try again later."""

    def __init__(self, scope: str):
        super().__init__(f"signup rate limit reached ({scope})")
        self.scope = scope


class ImportFileError(NewsletterError, ValueError):
    """The import file as a whole is unusable (no header, no email column...)."""
