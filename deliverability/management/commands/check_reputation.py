import json
import sys

from django.core.management.base import BaseCommand

from deliverability.identity import current_identity
from deliverability.preflight import FAIL, run_checks
from deliverability.resolver import DnsResolver

MARK = {"ok": "OK  ", "warn": "WARN", "fail": "FAIL", "unknown": "??  "}


class Command(BaseCommand):
    help = ("Pre-flight reputation checks of our relays and sending domains: reverse DNS, SPF, "
            "DKIM, DMARC, DNS blocklists, open relay. Exits 1 when a check fails.")

    def add_arguments(self, parser):
        parser.add_argument("--json", action="store_true", help="one JSON object per check")
        parser.add_argument("--no-open-relay", action="store_true",
                            help="skip the open-relay test (it connects to each relay)")

    def handle(self, *args, json: bool, no_open_relay: bool, **options):
        identity = current_identity()
        results = run_checks(
            DnsResolver(), relays=identity.relays, domains=identity.domains,
            from_domains=identity.from_domains, return_path_domain=identity.return_path_domain,
            open_relay=not no_open_relay,
        )
        for result in results:
            if json:
                self.stdout.write(_dumps(result.as_dict()))
            else:
                self.stdout.write(f"{MARK.get(result.status, result.status)} {result.check:<10} "
                                  f"{result.target}: {result.detail}")
        if not results:
            self.stdout.write("nothing to check: no relay IP or sending domain is configured")
        if any(r.status == FAIL for r in results):
            sys.exit(1)


def _dumps(value) -> str:
    return json.dumps(value)
