"""Fixtures for the bulk engine: a scriptable SMTP relay, a bulk pool, mailings."""

from __future__ import annotations

import threading

import pytest
from aiosmtpd.controller import Controller

from config.redis_server import free_port

# Local-part prefixes the scripted relay answers with a refusal.
RULES = {
    "unknown": "550 5.1.1 <{addr}>: Recipient address rejected: User unknown",
    "blocked": "554 5.7.1 Service unavailable; client host blocked using zen.spamhaus.org",
    "later": "451 4.7.1 Please try again later",
}


class ScriptedHandler:
    def __init__(self, pipelining: bool = True):
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.lock = threading.Lock()
        self.pipelining = pipelining
        self.commands: list[str] = []  # the command lines seen, in order
        self.refuse_mail: list[str] = []  # answers for the next MAIL commands
        self.refuse_rset: list[str] = []  # answers for the next RSET commands

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        if self.pipelining:
            responses = [*responses[:-1], "250-PIPELINING", responses[-1]]
        return responses

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        self.commands.append(f"MAIL {address}")
        # What the client sent past MAIL before hearing its answer: the pipelined rest.
        self.commands.append(f"... {bytes(server._reader._buffer).decode(errors='replace')}")
        if self.refuse_mail:
            return self.refuse_mail.pop(0)
        envelope.mail_from = address
        return "250 OK"

    async def handle_RSET(self, server, session, envelope):
        self.commands.append("RSET")
        return self.refuse_rset.pop(0) if self.refuse_rset else "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        self.commands.append(f"RCPT {address}")
        local = address.partition("@")[0]
        for prefix, reply in RULES.items():
            if local.startswith(prefix):
                return reply.format(addr=address)
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        with self.lock:
            self.messages.append((envelope.mail_from, list(envelope.rcpt_tos),
                                  envelope.content))
            number = len(self.messages)
        return f"250 2.0.0 Ok: queued as Q{number}"


class Relay:
    """A real aiosmtpd server on a free port that can be stopped and started again."""

    def __init__(self, port: int | None = None, pipelining: bool = True):
        self.port = port or free_port()
        self.handler = ScriptedHandler(pipelining)
        self.controller: Controller | None = None

    def start(self) -> Relay:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port,
                                     decode_data=False)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller:
            self.controller.stop()
            self.controller = None

    @property
    def messages(self):
        with self.handler.lock:
            return list(self.handler.messages)


@pytest.fixture
def relay_factory():
    relays: list[Relay] = []

    def make(start: bool = True, pipelining: bool = True) -> Relay:
        relay = Relay(pipelining=pipelining)
        if start:
            relay.start()
        relays.append(relay)
        return relay

    yield make
    for relay in relays:
        relay.stop()


@pytest.fixture
def sending_env(monkeypatch, redis_client, tmp_path):
    """Sending settings for a test (env + reload), fresh Redis and process caches."""
    from sending import conf
    from sending.services import reset_process_state

    def apply(**values: str):
        for name, value in values.items():
            monkeypatch.setenv(name, str(value))
        conf.reload()
        reset_process_state()

    apply(DKIM_KEY_DIR=str(tmp_path / "dkim"), BOUNCE_DOMAIN="bounce.example.org",
          SENDING_PROVIDER_RATE_PER_S="0")
    yield apply
    monkeypatch.undo()
    conf.reload()
    reset_process_state()


@pytest.fixture
def bulk_pool(db):
    from sending.models import RelayPool

    return RelayPool.objects.create(name="bulk-test", purpose=RelayPool.Purpose.BULK)


def add_relay(pool, relay: Relay, *, name: str, priority: int = 100, rate: float = 0):
    from sending.models import Relay as RelayRow

    return RelayRow.objects.create(pool=pool, name=name, host="127.0.0.1", port=relay.port,
                                   tls_mode="none", priority=priority, max_rate_per_s=rate)


def make_mailing(pool, addresses, **kwargs):
    from sending.services import mailing_create, mailing_start

    mailing = mailing_create(
        from_email=kwargs.pop("from_email", "News <news@example.org>"),
        subject=kwargs.pop("subject", "Hello {{ subscriber.name|default:\"reader\" }}"),
        text=kwargs.pop("text", "Hi {{ subscriber.name }},\nnews.\nLeave: {{ unsubscribe_url }}\n"),
        html=kwargs.pop("html", "<p>Hi {{ subscriber.name }}</p><a href=\"{{ unsubscribe_url }}\">"
                                "leave</a>"),
        list_id=kwargs.pop("list_id", "news.example.org"), pool=pool, **kwargs)
    mailing_start(mailing=mailing, recipients=[(None, a) for a in addresses], dispatch=False)
    return mailing


def delivery_ids(mailing):
    return list(mailing.deliveries.order_by("id").values_list("id", flat=True))
