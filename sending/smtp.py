"""SMTP sessions to relays, with the TLS mode each relay asks for, and one transaction
on a kept-alive session (pipelined where offered), shared by the bulk engine and the
transactional worker."""

from __future__ import annotations

import smtplib
import ssl
from collections.abc import Callable

from sending.relays import RelayConfig

CONNECT_TIMEOUT_S = 30


class RelayUnavailable(Exception):
    """The relay refused the connection, TLS or authentication: try another relay."""


class NotSent(Exception):
    """The session failed before the message data went out: surely not sent."""


class MaybeSent(Exception):
    """The session failed after the data went out, before the answer: possibly sent."""


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


def quote_periods(data: bytes) -> bytes:
    data = data.replace(b"\r\n.", b"\r\n..")
    return b"." + data if data.startswith(b".") else data


def envelope(session: smtplib.SMTP, mail_from: str, rcpt: str,
             before_data: Callable[[], object] | None = None) -> tuple[int, str] | None:
    """[RSET,] MAIL, RCPT and DATA; None once the server waits for the data, else the
    refusal.

    A reused session starts each message with RSET, so nothing of the previous
    transaction can carry over (and a session the server dropped shows before any
    data goes out). With PIPELINING (RFC 2920, offered by Postfix, Exim and the big
    providers) the commands go out in one write and their answers come back
    together: one round trip instead of three or four, for client and server alike.

    ``before_data`` runs once the commands are on their way, before any message data:
    work that overlaps the server's answers. It may return a function that finishes
    that work, called once the answers are in (whatever they are). Should either
    raise, the session is left mid-transaction and must be closed (nothing was sent).
    """
    # The addresses are ours and already plain: skip smtplib's slow quoteaddr().
    commands = [(f"MAIL FROM:<{mail_from}>", (250,)), (f"RCPT TO:<{rcpt}>", (250, 251)),
                ("DATA", (354,))]
    if getattr(session, "pw_used", False):
        commands.insert(0, ("RSET", (250,)))
    session.pw_used = True
    if "pipelining" in session.esmtp_features:
        session.send("".join(f"{command}\r\n" for command, _ in commands))
        finish = before_data() if before_data is not None else None
        try:
            answers = [session.getreply() for _ in commands]
        finally:
            if callable(finish):
                finish()
    else:
        finish = before_data() if before_data is not None else None
        if callable(finish):
            finish()
        answers = []
        for command, ok in commands:
            session.send(f"{command}\r\n")
            answers.append(session.getreply())
            if answers[-1][0] not in ok:
                break
    if commands[0][0] == "RSET" and answers[0][0] != 250:
        raise smtplib.SMTPResponseException(*answers[0])  # a session not to trust
    refusal = next(((code, reply) for (code, reply), (_, ok)
                    in zip(answers, commands, strict=False) if code not in ok), None)
    if refusal is None:
        return None
    if answers[-1][0] == 354:
        # Some servers open DATA without a recipient: end it empty, send nothing.
        session.send(".\r\n")
        session.getreply()
    session.rset()
    return refusal[0], refusal[1].decode("utf-8", "replace")


def smtp_transaction(session: smtplib.SMTP, mail_from: str, rcpt: str, data: bytes,
                     before_data: Callable[[], object] | None = None) -> tuple[int, str]:
    """One SMTP transaction; raises NotSent or MaybeSent when the session breaks
    (``before_data``: see ``envelope``; what it raises goes through as it is)."""
    try:
        refused = envelope(session, mail_from, rcpt, before_data)
    except (OSError, smtplib.SMTPException) as error:
        raise NotSent(str(error)) from error
    if refused is not None:
        return refused
    try:
        payload = quote_periods(data)
        if not payload.endswith(b"\r\n"):
            payload += b"\r\n"
        session.send(payload + b".\r\n")
        code, reply = session.getreply()
    except (OSError, smtplib.SMTPException) as error:
        raise MaybeSent(str(error)) from error
    return code, reply.decode("utf-8", "replace")
