"""Can this process's user open outgoing SMTP connections? (It should not, unless it sends.)"""

from __future__ import annotations

import errno
import getpass
import socket
from dataclasses import dataclass

BLOCKED_ERRORS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.EPERM, errno.EACCES,
                  errno.ENETUNREACH, errno.EHOSTUNREACH}


@dataclass
class EgressResult:
    target: str
    user: str
    open: bool
    detail: str


def check_egress(host: str, port: int = 25, *, timeout: float = 5.0) -> EgressResult:
    """Try one TCP connection; a refusal, reset or permission error means blocked."""
    target, user = f"{host}:{port}", getpass.getuser()
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return EgressResult(target, user, True, f"user {user} can connect to {target}: "
                                "outgoing SMTP is NOT restricted for this user")
    except TimeoutError:
        return EgressResult(target, user, False, f"connection to {target} timed out: blocked "
                            "(dropped) or unreachable")
    except OSError as exc:
        if exc.errno in BLOCKED_ERRORS:
            return EgressResult(target, user, False, f"user {user} cannot connect to {target} "
                                f"({exc.strerror}): the rule is in force")
        return EgressResult(target, user, False, f"could not connect to {target}: {exc}")
