"""An aiosmtpd sink in its own process that counts what it receives, in Redis.

    python -m benchmarks.sink_counter --port P --redis URL [--key sink]

Counts are kept in memory and flushed to Redis every few milliseconds:
INCRBY <key>:count n, and <key>:ids maps each Message-ID to the number of
times it arrived, so a benchmark can tell duplicates (a Message-ID seen twice)
and missing messages.
A Redis round trip per message would make the sink, not the sender, the thing
measured (≈ 530 msgs/s against ≈ 2,000 this way on the same machine); deleting
the keys resets the counts.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import signal
import subprocess
import sys
from collections import Counter

import redis
from aiosmtpd.smtp import SMTP

from sending.sink import PipeliningHandler

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
FLUSH_EVERY_S = 0.01


class CountingHandler(PipeliningHandler):
    def __init__(self, client: redis.Redis, key: str):
        self.client = client
        self.key = key
        self.count = 0
        self.seen: set[bytes] = set()
        self.new: list[bytes] = []
        self.again: Counter[bytes] = Counter()

    async def handle_DATA(self, server, session, envelope):
        head = envelope.content[: envelope.content.find(b"\r\n\r\n")]
        match = MESSAGE_ID.search(head)
        self.count += 1
        if match:
            message_id = match.group(1)
            if message_id in self.seen:
                self.again[message_id] += 1
            else:
                self.seen.add(message_id)
                self.new.append(message_id)
        return "250 2.0.0 OK"

    def flush(self) -> None:
        if not self.count:
            return
        count, new, again = self.count, self.new, self.again
        self.count, self.new, self.again = 0, [], Counter()
        pipe = self.client.pipeline(transaction=False)
        if new:  # one command for all first sightings
            pipe.hset(f"{self.key}:ids", mapping=dict.fromkeys(new, 1))
        for message_id, seen in again.items():
            pipe.hincrby(f"{self.key}:ids", message_id, seen)
        pipe.incrby(f"{self.key}:count", count)  # last: ids are there once the count is
        pipe.execute()


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
    flush = getattr(handler, "flush", None)
    if flush is not None:
        def tick():
            flush()
            loop.call_later(FLUSH_EVERY_S, tick)

        loop.call_soon(tick)
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


class CountingSink:
    """The aiosmtpd counting sink behind the same small interface as ``c_sink.CSink``."""

    def __init__(self, port: int, redis_url: str, key: str = "sink"):
        self.process = start(port, redis_url, key)
        self.pid = self.process.pid
        self.key = key
        self.client = redis.Redis.from_url(redis_url)

    def reset(self) -> None:
        self.client.delete(f"{self.key}:count", f"{self.key}:ids")

    def count(self) -> int:
        return int(self.client.get(f"{self.key}:count") or 0)

    def wait_for(self, expected: int, timeout: float) -> float:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= expected:
                return time.monotonic()
            time.sleep(0.02)
        raise TimeoutError(f"{self.key}:count at {self.count()} of {expected} after {timeout}s")

    def message_ids(self) -> Counter[bytes]:
        return Counter({k: int(v) for k, v in self.client.hgetall(f"{self.key}:ids").items()})

    def terminate(self) -> None:
        self.process.terminate()

    def wait(self, timeout: float) -> None:
        self.process.wait(timeout)
