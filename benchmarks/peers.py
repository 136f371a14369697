"""Peers measured in the same run as our engine: django-post_office and a plain Django loop.

    python -m benchmarks.send --sink c --peers        (beside the engine's figures)
    python -m benchmarks.peers [--messages 5000] [--sink c|python]

The peers are installed into a throwaway venv (Django of our range,
django-post_office, dkimpy) and run by ``benchmarks/peer_runner.py``, which
imports nothing of ours. Each sends the same newsletter-sized message (text
and HTML, ~5.6 kB) to the same sink, with and without a dkimpy RSA-2048
signature: ``send_queued_mail --processes 2`` for post_office (its default
threads per process, SQLite as its queue), one reused connection for the
Django loop. The peers do not render per recipient; we do.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
import venv
from pathlib import Path

from benchmarks.harness import ROOT

PACKAGES = ["Django>=5.2,<5.3", "django-post_office>=3.11,<4", "dkimpy>=1.1.8,<2"]
MODES = ("post_office", "post_office_dkim", "django_loop", "django_loop_dkim")


def install(folder: Path, log) -> Path:
    """A venv in ``folder`` with the peers; returns its python."""
    venv.EnvBuilder(with_pip=True).create(folder)
    python = folder / "bin" / "python"
    log(f"peers: installing {', '.join(PACKAGES)} into a throwaway venv")
    subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                    *PACKAGES], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return python


def run_mode(python: Path, mode: str, n: int, port: int, key: Path, sink, tmp: Path) -> float:
    """Messages a second one peer gets into the sink (from its first send to the last arrival)."""
    sink.reset()
    db = tmp / f"{mode}.sqlite3"
    process = subprocess.Popen(
        [str(python), str(ROOT / "benchmarks" / "peer_runner.py"), mode, str(n), str(port),
         str(key), str(db)], cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        if process.stdout.readline().strip() != b"start":
            raise RuntimeError(f"peer {mode} failed: {process.stderr.read().decode()[-2000:]}")
        started = time.monotonic()
        finished = sink.wait_for(n, timeout=900)
        process.wait(60)
    finally:
        if process.poll() is None:
            process.kill()
    return n / (finished - started)


def measure(port: int, sink, n: int, key: Path, log) -> dict[str, float]:
    """Each peer's rate, as ``{mode: msgs_per_s}``."""
    with tempfile.TemporaryDirectory(prefix="pw-peers-") as tmp:
        tmp = Path(tmp)
        python = install(tmp / "venv", log)
        rates = {}
        for mode in MODES:
            rates[mode] = round(run_mode(python, mode, n, port, key, sink, tmp), 1)
            log(f"peer {mode}: {rates[mode]:.0f} msgs/s")
        return rates


def main() -> None:
    from benchmarks import c_sink, sink_counter
    from benchmarks.harness import Bench
    from config.redis_server import free_port

    parser = argparse.ArgumentParser()
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--sink", choices=("python", "c"), default="c")
    args = parser.parse_args()
    with Bench("peers", migrate=False) as bench:
        from sending import dkim

        dkim.generate_rsa_key(bench.tmp / "dkim", "example.org", "pw1", bits=2048)
        port = free_port()
        sink = (c_sink.CSink(port) if args.sink == "c"
                else sink_counter.CountingSink(port, bench.redis.url))
        try:
            rates = measure(port, sink, args.messages, bench.tmp / "dkim" / "example.org" /
                            "pw1.pem", bench.log)
        finally:
            sink.terminate()
            sink.wait(10)
        bench.report(messages=args.messages, sink=args.sink,
                     **{f"{mode}_msgs_per_s": rate for mode, rate in rates.items()})


if __name__ == "__main__":
    sys.exit(main())
