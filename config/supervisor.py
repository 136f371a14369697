"""A small process supervisor for the local run: one terminal, prefixed logs.

Each service runs in its own process group, so stopping kills whatever it
spawned (Celery's pool processes included) and nothing is left behind.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

COLOURS = ["36", "32", "33", "35", "34", "31", "96", "92"]


@dataclass
class Service:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    ready: callable | None = None  # blocks until the service is usable
    process: subprocess.Popen | None = None


class Supervisor:
    def __init__(self, services: list[Service], *, out=None, stop_timeout: float = 10.0):
        self.services = services
        self.out = out or sys.stdout
        self.stop_timeout = stop_timeout
        self.width = max(len(s.name) for s in services)
        self._print_lock = threading.Lock()
        self._stopping = threading.Event()
        self._colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")

    def say(self, name: str, line: str, colour: str = "0") -> None:
        prefix = f"{name:<{self.width}} | "
        if self._colour:
            prefix = f"\033[{colour}m{prefix}\033[0m"
        with self._print_lock:
            self.out.write(prefix + line.rstrip("\n") + "\n")
            self.out.flush()

    def _pump(self, service: Service, colour: str) -> None:
        assert service.process and service.process.stdout
        for raw in service.process.stdout:
            self.say(service.name, raw.decode("utf-8", "replace"), colour)

    def start(self) -> None:
        for index, service in enumerate(self.services):
            if self._stopping.is_set():
                return
            colour = COLOURS[index % len(COLOURS)]
            env = {**os.environ, "PYTHONUNBUFFERED": "1", **service.env}
            service.process = subprocess.Popen(
                service.command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL, start_new_session=True,
            )
            self.say(service.name, f"started (pid {service.process.pid}): "
                     f"{' '.join(service.command)}", colour)
            threading.Thread(target=self._pump, args=(service, colour), daemon=True).start()
            if service.ready:
                service.ready()

    def stop(self) -> None:
        self._stopping.set()
        running = [s for s in reversed(self.services) if s.process and s.process.poll() is None]
        for service in running:
            self._signal_group(service, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        for service in running:
            try:
                service.process.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                self.say(service.name, "did not stop in time: killing")
        # Kill leftovers of every group, including grandchildren of exited leaders.
        for service in self.services:
            if service.process:
                self._signal_group(service, signal.SIGKILL)
                service.process.wait()

    @staticmethod
    def _signal_group(service: Service, sig: int) -> None:
        try:
            os.killpg(service.process.pid, sig)
        except ProcessLookupError:
            pass

    def run(self) -> int:
        """Start everything, wait for a signal or a crash, stop everything."""
        exit_code = 0
        def on_signal(signum, frame):
            self._stopping.set()
        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        try:
            try:
                self.start()
            except Exception as exc:
                self.say("supervisor", f"start-up failed: {exc}")
                exit_code = 1
                self._stopping.set()
            while not self._stopping.wait(0.2):
                for service in self.services:
                    if service.process and service.process.poll() is not None:
                        self.say(service.name, f"exited with {service.process.returncode}: "
                                 "stopping everything")
                        exit_code = 1
                        self._stopping.set()
                        break
        finally:
            self.say("supervisor", "stopping")
            self.stop()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            self.say("supervisor", "stopped")
        return exit_code
