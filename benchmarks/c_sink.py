"""Postfix's ``smtp-sink`` (C) as the benchmark's relay, and ``smtp-source`` as its ceiling.

An aiosmtpd sink costs ~1 ms of CPU a message on the same two cores as the
workers, so it, not the engine, is most of what a Python sink measures. Real
relays are C or Rust. ``smtp-sink -d TEMPLATE`` writes each mail transaction
to a file of its own (a tmpfs folder here); the benchmark counts those files
while it runs and reads their Message-IDs afterwards to find duplicates and
missing messages.

Both programs ship in Debian's ``postfix`` package; only the binaries are
used (no mail daemon is started). ``find()`` returns None when they are not
installed, and ``benchmarks.send --sink c`` then says how to get them.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import tempfile
import time
from collections import Counter
from pathlib import Path

MESSAGE_ID = re.compile(rb"^Message-ID:\s*(\S+)", re.IGNORECASE | re.MULTILINE)
SEARCH = ("/usr/sbin", "/usr/local/sbin", "/usr/libexec/postfix")


def find(name: str) -> str | None:
    """Path of ``smtp-sink`` / ``smtp-source`` (PATH first, then the sbin folders)."""
    found = shutil.which(name)
    if found:
        return found
    for folder in SEARCH:
        path = Path(folder) / name
        if path.is_file() and os.access(path, os.X_OK):
            return str(path)
    return None


def _tmpfs() -> Path:
    """A folder in RAM when there is one (disk latency would be measured otherwise)."""
    shm = Path("/dev/shm")
    base = shm if shm.is_dir() and os.access(shm, os.W_OK) else None
    return Path(tempfile.mkdtemp(prefix="pw-c-sink-", dir=base))


class CSink:
    """A running ``smtp-sink`` writing one file per message into a tmpfs folder."""

    def __init__(self, port: int):
        binary = find("smtp-sink")
        if binary is None:
            raise RuntimeError("smtp-sink not found: install Debian's postfix package "
                               "(apt-get install postfix); only its binaries are used")
        self.port = port
        self.folder = _tmpfs()
        self.folder.chmod(0o777)  # smtp-sink drops to an unprivileged user when root
        command = [binary, "-4", "-d", str(self.folder / "%H%M%S.")]
        if os.geteuid() == 0:
            command[1:1] = ["-u", "nobody"]
        # backlog 256 as Postfix's own examples; -m bounds simultaneous sessions.
        command += ["-m", "64", f"127.0.0.1:{port}", "256"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL,
                                        stderr=subprocess.PIPE)
        self.pid = self.process.pid
        _wait_listening(port, self.process)
        self._offset = 0

    def reset(self) -> None:
        """Forget what arrived so far (the ceiling's messages before the engine's)."""
        for entry in os.scandir(self.folder):
            os.unlink(entry.path)

    def count(self) -> int:
        return sum(1 for _ in os.scandir(self.folder))

    def wait_for(self, expected: int, timeout: float) -> float:
        """Monotonic time at which ``expected`` messages had arrived."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count() >= expected:
                return time.monotonic()
            time.sleep(0.05)
        raise TimeoutError(f"c sink at {self.count()} of {expected} after {timeout}s")

    def message_ids(self) -> Counter[bytes]:
        """How many times each Message-ID arrived (read from the files after the run)."""
        seen: Counter[bytes] = Counter()
        for entry in os.scandir(self.folder):
            with open(entry.path, "rb") as handle:
                head = handle.read(16384)
            end = head.find(b"\n\n")
            match = MESSAGE_ID.search(head if end < 0 else head[:end])
            if match:
                seen[match.group(1)] += 1
        return seen

    def terminate(self) -> None:
        self.process.terminate()

    def wait(self, timeout: float) -> None:
        try:
            self.process.wait(timeout)
        finally:
            shutil.rmtree(self.folder, ignore_errors=True)


def _wait_listening(port: int, process: subprocess.Popen, timeout: float = 10) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("smtp-sink exited: "
                               + process.stderr.read().decode(errors="replace").strip())
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"smtp-sink not listening on {port}")


def source_ceiling(port: int, messages: int, size: int, sessions: int = 4) -> float:
    """Messages a second ``smtp-source`` (C) gets into the sink: the sink's own limit.

    ``-s`` parallel sessions, ``-m`` messages in all, ``-l`` the body size, and
    ``-d``: the next message over the same connection, as our engine reuses its
    sessions.
    """
    binary = find("smtp-source")
    if binary is None:
        raise RuntimeError("smtp-source not found: install Debian's postfix package")
    started = time.monotonic()
    subprocess.run([binary, "-d", "-s", str(sessions), "-m", str(messages), "-l", str(size),
                    "-f", "bounces@example.org", "-t", "ceiling@example.net",
                    f"127.0.0.1:{port}"], check=True, stdout=subprocess.DEVNULL)
    return messages / (time.monotonic() - started)
