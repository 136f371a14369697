"""An aiosmtpd sink in its own process that counts what it receives, in Redis.

    python -m benchmarks.sink_counter --port P --redis URL [--key sink]

Per message: INCR <key>:count, and HINCRBY <key>:ids <Message-ID> 1, so a
benchmark can tell duplicates (a Message-ID seen twice) and missing messages.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys

import redis
from aiosmtpd.smtp import SMTP

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)


class CountingHandler:
    def __init__(self, client: redis.Redis, key: str):
        self.client = client
        self.key = key

    async def handle_DATA(self, server, session, envelope):
        head = envelope.content[: envelope.content.find(b"\r\n\r\n")]
        match = MESSAGE_ID.search(head)
        pipe = self.client.pipeline(transaction=False)
        pipe.incr(f"{self.key}:count")
        if match:
            pipe.hincrby(f"{self.key}:ids", match.group(1), 1)
        pipe.execute()
        return "250 2.0.0 OK"


def serve(handler, port: int) -> None:
    """Run an aiosmtpd server with ``handler`` on loopback until SIGTERM/SIGINT."""
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    server = loop.run_until_complete(loop.create_server(
        lambda: SMTP(handler, decode_data=False, data_size_limit=None), "127.0.0.1", port))
    loop.add_signal_handler(signal.SIGTERM, loop.stop)
    loop.add_signal_handler(signal.SIGINT, loop.stop)
    print("ready", flush=True)
    loop.run_forever()
    server.close()


def spawn(module: str, *args: str) -> subprocess.Popen:
    """Start ``python -m module args`` and wait until it prints "ready"."""
    process = subprocess.Popen([sys.executable, "-m", module, *args], stdout=subprocess.PIPE)
    if process.stdout.readline().strip() != b"ready":
        raise RuntimeError(f"{module} did not start")
    return process


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--redis", required=True)
    parser.add_argument("--key", default="sink")
    args = parser.parse_args()
    serve(CountingHandler(redis.Redis.from_url(args.redis), args.key), args.port)


def start(port: int, redis_url: str, key: str = "sink") -> subprocess.Popen:
    """Start the sink in another process and wait until it listens."""
    return spawn("benchmarks.sink_counter", "--port", str(port), "--redis", redis_url,
                 "--key", key)


if __name__ == "__main__":
    main()
