"""Memory of bounce intake: the listener under parallel large messages, and ingest per size.

    python -m benchmarks.intake_memory [--parallel 20] [--mb 9]

Starts ``manage.py bounce_listener`` (DEBUG off, as in production) against a
throwaway database, sends ``--parallel`` messages of ``--mb`` MB at once
(a DSN returning a large attachment, to one valid VERP address) and, one
second in, a small bounce; reports the listener's peak RSS (VmHWM) against its
idle size and how long the small bounce waited. Then, in this process, the
Python peak (tracemalloc) of ``ingest_file`` per message size, as a multiple
of the size (the spooled file itself is on disk, not counted).
"""

from __future__ import annotations

import argparse
import base64
import os
import smtplib
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc

from benchmarks.harness import ROOT, Bench
from config.redis_server import free_port, wait_for_port

MB = 1024 * 1024
DOMAIN = "bounce.bench.example.org"


def _vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return 0.0


def _report(rcpt: str, size: int, nonce: str) -> bytes:
    head = (f"From: MAILER-DAEMON@mx.example.net\r\nTo: {rcpt}\r\nSubject: failed {nonce}\r\n"
            "MIME-Version: 1.0\r\nContent-Type: multipart/report; report-type=delivery-status;"
            " boundary=\"B\"\r\n\r\n--B\r\nContent-Type: text/plain\r\n\r\nNot delivered.\r\n"
            "--B\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
            "Final-Recipient: rfc822; reader@example.org\r\nAction: failed\r\nStatus: 5.1.1\r\n"
            "\r\n").encode()
    if size:
        body = base64.encodebytes(os.urandom(size * 3 // 4)).replace(b"\n", b"\r\n")
        head += b"--B\r\nContent-Type: application/octet-stream\r\n\r\n" + body
    return head + b"--B--\r\n"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--parallel", type=int, default=20)
    parser.add_argument("--mb", type=float, default=9)
    args = parser.parse_args()
    os.environ.update(DJANGO_DEBUG="false", BOUNCE_DOMAIN=DOMAIN,
                      DJANGO_SECRET_KEY=os.environ.get("DJANGO_SECRET_KEY")
                      or "bench-only-" + "s" * 50,
                      BOUNCE_LISTENER_PEER_CONNECTIONS=str(args.parallel + 10),
                      BOUNCE_LISTENER_PEER_RATE_PER_MIN=str(args.parallel * 10))
    with Bench("intake_memory") as bench:
        from django.utils import timezone

        from deliverability import verp
        from deliverability.intake import ingest_file
        from sending.models import Delivery, Mailing

        mailing = Mailing.objects.create(from_email="n@bench.example.org", subject_template="s",
                                         text_template="t", state=Mailing.State.SENDING)
        delivery = Delivery.objects.create(mailing=mailing, address="reader@example.org",
                                           state=Delivery.State.SENT, sent_at=timezone.now())
        rcpt = verp.encode(delivery.id, DOMAIN)
        port = free_port()
        listener = subprocess.Popen([sys.executable, "manage.py", "bounce_listener", "--port",
                                     str(port), "--domain", DOMAIN], cwd=ROOT, env=os.environ,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_for_port("127.0.0.1", port, 60)
            idle = _vm_hwm_mb(listener.pid)
            size = int(args.mb * MB)
            messages = [_report(rcpt, size, str(n)) for n in range(args.parallel)]
            bench.log(f"sending {args.parallel} x {args.mb} MB at once")

            def push(raw: bytes) -> None:
                with smtplib.SMTP("127.0.0.1", port, timeout=600) as smtp:
                    smtp.sendmail("", [rcpt], raw)

            threads = [threading.Thread(target=push, args=(m,)) for m in messages]
            started = time.monotonic()
            for thread in threads:
                thread.start()
            time.sleep(1.0)
            small_at = time.monotonic()
            push(_report(rcpt, 0, "small"))
            small_s = time.monotonic() - small_at
            for thread in threads:
                thread.join()
            wall = time.monotonic() - started
            peak = _vm_hwm_mb(listener.pid)
        finally:
            listener.terminate()
            listener.wait(30)
        bench.log(f"listener peak RSS {peak:.0f} MB (idle {idle:.0f} MB); small bounce "
                  f"answered in {small_s:.2f} s; all stored in {wall:.1f} s")
        ingest: dict[str, float] = {}
        warm = tempfile.SpooledTemporaryFile()
        warm.write(_report(rcpt, 1000, "warm-up"))  # rules and queries loaded once
        ingest_file(warm, source="pipe")
        for mb in (1, 4, args.mb):
            raw = _report(rcpt, int(mb * MB), f"t{mb}")
            spool = tempfile.SpooledTemporaryFile(max_size=256 * 1024)
            spool.write(raw)
            tracemalloc.start()
            ingest_file(spool, source="pipe")
            ingest[f"{mb:g}mb"] = round(tracemalloc.get_traced_memory()[1] / len(raw), 2)
            tracemalloc.stop()
        bench.log(f"ingest peak (Python) per message size: {ingest}")
        bench.report(parallel=args.parallel, mb=args.mb, listener_idle_mb=round(idle),
                     listener_peak_mb=round(peak), small_bounce_s=round(small_s, 2),
                     stored_s=round(wall, 1), ingest_peak_x_size=ingest)


if __name__ == "__main__":
    main()
