"""SMTP sessions to relays, with the TLS mode each relay asks for."""

from __future__ import annotations

import smtplib
import ssl

from sending.relays import RelayConfig

CONNECT_TIMEOUT_S = 30


class RelayUnavailable(Exception):
    """The relay refused the connection, TLS or authentication: try another relay."""


def _tls_context(relay: RelayConfig) -> ssl.SSLContext:
    context = ssl.create_default_context()
    if not relay.verify_certificate:
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    return context


def open_session(relay: RelayConfig, *, timeout: float = CONNECT_TIMEOUT_S) -> smtplib.SMTP:
    """A connected, greeted (and if configured, encrypted and authenticated) session."""
    source = (relay.source_address, 0) if relay.source_address else None
    helo = relay.helo_name or None
    try:
        if relay.tls_mode == "implicit":
            session: smtplib.SMTP = smtplib.SMTP_SSL(
                relay.host, relay.port, local_hostname=helo, timeout=timeout,
                source_address=source, context=_tls_context(relay),
            )
        else:
            session = smtplib.SMTP(
                relay.host, relay.port, local_hostname=helo, timeout=timeout,
                source_address=source,
            )
        session.ehlo()
        if relay.tls_mode == "starttls":
            session.starttls(context=_tls_context(relay))
            session.ehlo()
        if relay.username:
            session.login(relay.username, relay.password)
    except (OSError, smtplib.SMTPException) as exc:
        raise RelayUnavailable(f"{relay.label}: {exc}") from exc
    return session


def close_quietly(session: smtplib.SMTP | None) -> None:
    if session is None:
        return
    try:
        session.quit()
    except (OSError, smtplib.SMTPException):
        session.close()
