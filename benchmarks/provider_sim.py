"""aiosmtpd posing as several mailbox providers, one of which starts blocking.

    python -m benchmarks.provider_sim --port P --redis URL --block-domain bluewin.ch
        [--block-after 50] [--block-seconds 20]

Recipients are told apart by domain. The blocking provider accepts its first
``--block-after`` messages, then answers every RCPT with Swisscom's
``554 5.7.1 ... You are not allowed to send us mail`` for ``--block-seconds``,
then accepts again. Every RCPT is logged in Redis (``sim:<domain>`` lists of
``time:outcome``) and accepted messages are counted by Message-ID
(``sim:ids``), so the benchmark can tell what reached whom and when.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import time

import redis

from benchmarks.sink_counter import serve, spawn

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
BLOCK_REPLY = "554 5.7.1 Swisscom AG IP: 127.0.0.1, You are not allowed to send us mail"


class ProviderHandler:
    def __init__(self, client: redis.Redis, block_domain: str, block_after: int,
                 block_seconds: float):
        self.client = client
        self.block_domain = block_domain
        self.block_after = block_after
        self.block_seconds = block_seconds
        self.accepted = 0
        self.block_started: float | None = None

    def blocking(self, now: float) -> bool:
        if self.block_after < 0:
            return False
        if self.block_started is None:
            if self.accepted >= self.block_after:
                self.block_started = now
                self.client.set("sim:block_started", now)
                self.client.set("sim:block_ends", now + self.block_seconds)
                return True
            return False
        return now < self.block_started + self.block_seconds

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        domain = address.rpartition("@")[2].lower()
        now = time.time()
        if domain == self.block_domain and self.blocking(now):
            self.client.rpush(f"sim:{domain}", f"{now}:blocked")
            return BLOCK_REPLY
        envelope.rcpt_tos.append(address)
        return "250 2.1.5 OK"

    async def handle_DATA(self, server, session, envelope):
        now = time.time()
        head = envelope.content[: envelope.content.find(b"\r\n\r\n")]
        match = MESSAGE_ID.search(head)
        pipe = self.client.pipeline(transaction=False)
        for address in envelope.rcpt_tos:
            domain = address.rpartition("@")[2].lower()
            if domain == self.block_domain:
                self.accepted += 1
            pipe.rpush(f"sim:{domain}", f"{now}:accepted")
        if match:
            pipe.hincrby("sim:ids", match.group(1), 1)
        pipe.execute()
        return "250 2.0.0 OK"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--block-domain", default="bluewin.ch")
    parser.add_argument("--block-after", type=int, default=50, help="-1: never block")
    parser.add_argument("--block-seconds", type=float, default=20.0)
    args = parser.parse_args()
    serve(ProviderHandler(redis.Redis.from_url(args.redis), args.block_domain,
                          args.block_after, args.block_seconds), args.port)


def start(port: int, redis_url: str, *, block_after: int, block_seconds: float,
          block_domain: str = "bluewin.ch") -> subprocess.Popen:
    return spawn("benchmarks.provider_sim", "--port", str(port), "--redis", redis_url,
                 "--block-domain", block_domain, "--block-after", str(block_after),
                 "--block-seconds", str(block_seconds))


if __name__ == "__main__":
    main()
