"""Vendor notice layouts: MTAs and gateways that state a failure in their own fixed
words, without an RFC 3464 report. One small module per layout, each written from the
MTA's published format (its source or manual, cited in the module), never from sample
bounces. A layout only reads what its format puts where: the failed recipient, the
remote's reply and the command it answered, and a reason only where the format's own
fixed vocabulary states one. Everything else is decided by the usual order (status,
reply code, rules).

Each module has ``NAME``, ``SOURCE``, ``detect(report) -> bool`` and
``parse(report) -> list[Failure]``.
"""

from __future__ import annotations

from ..model import Report
from . import dma, fml, imail, interscan, messagingserver, surfcontrol, verizon

LAYOUTS = (dma, messagingserver, imail, interscan, surfcontrol, verizon, fml)


def read(report: Report) -> bool:
    """Fill ``report`` from the first layout that recognises it; False if none does."""
    for layout in LAYOUTS:
        if layout.detect(report):
            failures = layout.parse(report)
            if failures:
                for f in failures:
                    f.context = f.context or report.notice
                report.failures.extend(failures)
                report.form = f"layout:{layout.NAME}"
                return True
    return False
