"""The breaker's state machine on a controllable clock, against a real Redis.

Replies are the providers' own texts, as quoted in
shared/research/deliverability.md sections 7-8 (sources cited there: Google
support answers 81126/3726730, Yahoo Sender Hub error codes, Microsoft's
delisting pages, T-Online's postmaster page, the Swisscom case of DESIGN.md).
"""

import pytest

from deliverability.breaker.engine import (
    MANUAL,
    OK,
    PAUSED,
    POOL_WIDE,
    PROBING,
    THROTTLED,
    Breaker,
)
from deliverability.models import BreakerTransition

SWISSCOM = (554, "5.7.1 Swisscom AG IP: 94.130.34.42, You are not allowed to send us mail")
# GMX's multi-line block (postmaster.gmx.com "error-messages"; the last line is decisive).
GMX_BLOCK = (554, "gmx.net (mxgmx104) Nemesis ESMTP Service not available\n554-No SMTP service\n"
                  "554-IP address is block listed.\n554 For explanation visit "
                  "https://postmaster.gmx.net/en/case?c=r0201")
YAHOO_TSS04 = (421, "4.7.0 [TSS04] Messages from 94.130.34.42 temporarily deferred due to "
                    "unexpected volume or user complaints - 4.16.55.1")
GMAIL_RATE = (421, "4.7.28 [94.130.34.42] Our system has detected an unusual rate of unsolicited "
                   "mail originating from your IP address. To protect our users from spam, mail "
                   "sent from your IP address has been temporarily rate limited.")
MS_S3150 = (550, "5.7.1 Unfortunately, messages from [94.130.34.42] weren't sent. Please contact "
                 "your Internet service provider since part of their network is on our block "
                 "list (S3150).")
TONLINE_NOWL = (554, "IP=94.130.34.42 - A problem occurred. (Ask your postmaster for help or to "
                     "contact tosa@rx.t-online.de to clarify.) (NOWL)")
USER_UNKNOWN = (550, "5.1.1 The email account that you tried to reach does not exist.")

H = 3600


class Clock:
    def __init__(self, start: float = 1_800_000_000.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def breaker(redis_client, clock, db):
    return Breaker(redis=redis_client, clock=clock, time_scale=1.0)


def hit(breaker, provider, reply, pool="bulk", **kw):
    code, text = reply
    return breaker.record(provider=provider, pool=pool, code=code, text=text, **kw)


def test_hits_spaced_wider_than_the_window_never_trip(breaker, clock):
    for _ in range(5):
        assert hit(breaker, "yahoo", YAHOO_TSS04) is None
        clock.advance(61 * 60)  # the reputation window is 60 minutes
    assert breaker.status("yahoo", "bulk")["state"] == OK
    assert breaker.decide("yahoo", "bulk").allowed


def test_threshold_trips_a_pause_with_the_reason_and_an_audit_row(breaker, clock):
    assert hit(breaker, "yahoo", YAHOO_TSS04) is None
    clock.advance(10 * 60)
    assert hit(breaker, "yahoo", YAHOO_TSS04) == PAUSED
    decision = breaker.decide("yahoo", "bulk")
    assert not decision.allowed and decision.wait_until == clock.now + 2 * H
    assert "yahoo.complaints" in decision.reason
    row = BreakerTransition.objects.get()
    assert (row.from_state, row.to_state, row.klass, row.rule_id) == (
        OK, PAUSED, "reputation", "yahoo.complaints")
    assert "TSS04" in row.reply
    # Other providers and other pools are untouched.
    assert breaker.decide("google", "bulk").allowed
    assert breaker.decide("yahoo", "transactional").allowed


def test_an_explicit_ip_block_pauses_at_the_first_answer(breaker, clock):
    assert hit(breaker, "united_internet", GMX_BLOCK) == PAUSED
    decision = breaker.decide("united_internet", "bulk")
    assert not decision.allowed and decision.wait_until == clock.now + 4 * H
    # More of the same while paused does not extend or escalate the pause.
    hit(breaker, "united_internet", GMX_BLOCK)
    assert breaker.decide("united_internet", "bulk").wait_until == clock.now + 4 * H


def probe_all(breaker, clock, provider, answers):
    """Let the probes out one by one (≤ 1 a minute) and feed back ``answers``."""
    sent = 0
    for reply in answers:
        decision = breaker.decide(provider, "bulk")
        while not decision.allowed:
            assert decision.state == PROBING and decision.wait_until > clock.now
            clock.advance(decision.wait_until - clock.now)
            decision = breaker.decide(provider, "bulk")
        assert decision.max_connections == 1 and not decision.cacheable
        sent += 1
        if reply == "accepted":
            breaker.record_accepted(provider=provider, pool="bulk")
        else:
            hit(breaker, provider, reply)
    return sent


def test_clean_probes_reopen_at_a_reduced_rate_that_climbs_back(breaker, clock):
    hit(breaker, "united_internet", GMX_BLOCK)
    clock.advance(4 * H)
    decision = breaker.decide("united_internet", "bulk")
    assert decision.allowed and decision.state == PROBING
    # The probe budget is five messages, at most one a minute.
    again = breaker.decide("united_internet", "bulk")
    assert not again.allowed and again.wait_until == clock.now + 60
    breaker.record_accepted(provider="united_internet", pool="bulk")
    probe_all(breaker, clock, "united_internet", ["accepted"] * 3)
    assert breaker.status("united_internet", "bulk")["state"] == OK
    ramp = []
    for _ in range(4):
        ramp.append(breaker.decide("united_internet", "bulk").rate_factor)
        clock.advance(H)
    assert ramp == [0.25, 0.5, 0.75, 1.0]
    states = list(BreakerTransition.objects.order_by("id").values_list("to_state", flat=True))
    assert states == [PAUSED, PROBING, OK]


def test_a_probe_blocked_again_trips_the_next_ladder_step(breaker, clock):
    hit(breaker, "united_internet", GMX_BLOCK)
    clock.advance(4 * H)
    probe_all(breaker, clock, "united_internet", ["accepted", GMX_BLOCK])
    decision = breaker.decide("united_internet", "bulk")
    assert not decision.allowed and decision.wait_until == clock.now + 12 * H
    assert breaker.status("united_internet", "bulk")["level"] == "2"


def test_probes_that_are_only_deferred_count_as_not_clean(breaker, clock):
    hit(breaker, "united_internet", GMX_BLOCK)
    clock.advance(4 * H)
    deferral = (451, "4.3.0 Temporary local problem, please try again")
    probe_all(breaker, clock, "united_internet", [deferral] * 5)
    assert breaker.status("united_internet", "bulk")["state"] == PAUSED


def test_past_the_ladder_the_key_needs_an_operator(breaker, clock):
    for step in (4, 12, 24, 48):
        assert hit(breaker, "united_internet", GMX_BLOCK) == PAUSED
        clock.advance(step * H)
        assert breaker.decide("united_internet", "bulk").state == PROBING
    assert hit(breaker, "united_internet", GMX_BLOCK) == MANUAL
    clock.advance(30 * 24 * H)
    decision = breaker.decide("united_internet", "bulk")
    assert not decision.allowed and decision.state == MANUAL and decision.wait_until is None
    breaker.acknowledge("united_internet", "bulk", actor="ops")
    assert breaker.decide("united_internet", "bulk").state == PROBING
    assert BreakerTransition.objects.filter(actor="ops", to_state=PROBING).exists()


def test_a_ladder_of_manual_stops_at_once(breaker):
    assert hit(breaker, "t_online", TONLINE_NOWL) == MANUAL
    assert not breaker.decide("t_online", "bulk").allowed


def test_levels_decay_after_clean_days(breaker, clock):
    hit(breaker, "united_internet", GMX_BLOCK)  # level 1 after a 4 h pause
    clock.advance(4 * H)
    probe_all(breaker, clock, "united_internet", ["accepted"] * 4)
    clock.advance(8 * 24 * H)  # a clean week: blocks decay one level per 7 days
    hit(breaker, "united_internet", GMX_BLOCK)  # level 0 again:
    assert breaker.decide("united_internet", "bulk").wait_until == clock.now + 4 * H


def test_without_decay_time_the_ladder_escalates(breaker, clock):
    hit(breaker, "united_internet", GMX_BLOCK)
    clock.advance(4 * H)
    probe_all(breaker, clock, "united_internet", ["accepted"] * 4)
    clock.advance(24 * H)
    hit(breaker, "united_internet", GMX_BLOCK)
    assert breaker.decide("united_internet", "bulk").wait_until == clock.now + 12 * H


def test_our_own_holds_never_count(breaker):
    for _ in range(5):
        assert hit(breaker, "united_internet", GMX_BLOCK, internal=True) is None
    assert breaker.status("united_internet", "bulk")["state"] == OK
    assert not BreakerTransition.objects.exists()


def test_recipient_answers_never_trip(breaker):
    for _ in range(20):
        assert hit(breaker, "google", USER_UNKNOWN) is None
    assert breaker.decide("google", "bulk").allowed


def test_rate_limits_throttle_instead_of_pausing(breaker, clock):
    for _ in range(2):
        assert hit(breaker, "google", GMAIL_RATE) is None
    assert hit(breaker, "google", GMAIL_RATE) == THROTTLED
    decision = breaker.decide("google", "bulk")
    assert decision.allowed and decision.state == THROTTLED and decision.rate_factor == 0.5
    assert decision.max_connections == 1
    clock.advance(10 * 60)
    assert breaker.decide("google", "bulk").state == PROBING


def test_two_providers_blocking_within_an_hour_pause_the_whole_pool(breaker, clock):
    hit(breaker, "united_internet", GMX_BLOCK)
    clock.advance(20 * 60)
    hit(breaker, "microsoft_consumer", MS_S3150)
    hit(breaker, "microsoft_consumer", MS_S3150)
    decision = breaker.decide("google", "bulk")  # a third provider
    assert not decision.allowed and "every provider" in decision.reason
    assert BreakerTransition.objects.filter(provider=POOL_WIDE, to_state=PAUSED).exists()
    assert breaker.decide("google", "transactional").allowed  # other pools go on


def test_operator_pause_extend_resume(breaker, clock):
    breaker.pause("google", "bulk", seconds=H, actor="ops", note="checking DNS")
    decision = breaker.decide("google", "bulk")
    assert not decision.allowed and "ops" in decision.reason
    breaker.extend("google", "bulk", seconds=H, actor="ops")
    assert breaker.decide("google", "bulk").wait_until == clock.now + 2 * H
    breaker.resume("google", "bulk", actor="ops")
    decision = breaker.decide("google", "bulk")
    assert decision.allowed and decision.rate_factor == 0.25
    assert BreakerTransition.objects.filter(actor="ops").count() == 3


def test_state_is_shared_by_every_breaker_instance(redis_client, clock, db):
    """Two workers: one trips, the other sees the pause (the gate reads the same hash)."""
    worker_a = Breaker(redis=redis_client, clock=clock, time_scale=1.0)
    worker_b = Breaker(redis=redis_client, clock=clock, time_scale=1.0)
    hit(worker_a, "united_internet", GMX_BLOCK)
    assert not worker_b.decide("united_internet", "bulk").allowed
    assert worker_b.keys() == [("united_internet", "bulk")]


# --- Swisscom-style blocks: probing cannot help before the delisting form -------------

def test_a_block_that_needs_the_delisting_form_waits_for_the_operator_with_its_link(
        breaker, clock):
    assert hit(breaker, "swisscom", SWISSCOM) == MANUAL
    status = breaker.status("swisscom", "bulk")
    assert status["needs"] == "needs_delisting_form"
    assert status["action_url"] == "https://postmaster.bluewin.ch/"
    assert "delisting form" in status["action"]
    clock.advance(30 * 24 * H)  # no cool-down ends it: no probe is ever sent by itself
    decision = breaker.decide("swisscom", "bulk")
    assert not decision.allowed and decision.state == MANUAL and decision.wait_until is None
    assert "delisting form" in decision.reason
    breaker.acknowledge("swisscom", "bulk", actor="ops")  # the form was filed
    assert breaker.decide("swisscom", "bulk").state == PROBING


def test_the_same_block_text_without_the_tag_would_only_pause(redis_client, clock, db):
    from deliverability.breaker.rules import load, parse

    raw = load().raw
    rules = [{**r, "tag": ""} if r["id"] == "swisscom.block" else r for r in raw["rules"]]
    untagged = Breaker(redis=redis_client, clock=clock, time_scale=1.0,
                       ruleset=parse({**raw, "rules": rules}))
    assert hit(untagged, "swisscom", SWISSCOM) == PAUSED


# --- the catch-all failure rate --------------------------------------------------------

NEW_BLOCK_TEXT = (554, "5.0.0 Frobnicator error 7731")  # an unknown 5xx: no rule, no class


def send_mix(breaker, provider, *, total, refused_every, reply=NEW_BLOCK_TEXT):
    """``total`` messages, every ``refused_every``-th refused with ``reply``, the rest
    accepted; accepted ones are reported in batches as the sending engine does."""
    states, accepted = [], 0
    for n in range(1, total + 1):
        if n % refused_every == 0:
            breaker.count_accepted({(provider, "bulk"): accepted})
            accepted = 0
            states.append(hit(breaker, provider, reply))
        else:
            accepted += 1
    breaker.count_accepted({(provider, "bulk"): accepted})
    return [s for s in states if s]


def test_an_unknown_provider_refusing_30_percent_with_an_unknown_text_is_paused(
        breaker, clock):
    # 3 of every 10 messages refused (10 % would not do: see below), as a provider with
    # a brand-new wording nobody wrote a rule for. One refusal a second.
    refused = 0
    for n in range(1, 200):
        if n % 10 in (3, 6, 9):
            refused += 1
            state = hit(breaker, "mx.frobnicator.example", NEW_BLOCK_TEXT)
            if state:
                break
        else:
            breaker.count_accepted({("mx.frobnicator.example", "bulk"): 1})
        clock.advance(1)
    assert state == PAUSED
    assert n >= 50  # not before the minimum sample
    decision = breaker.decide("mx.frobnicator.example", "bulk")
    assert not decision.allowed and decision.wait_until == clock.now + 30 * 60
    assert "catch-all" in decision.reason
    row = BreakerTransition.objects.get()
    assert row.klass == "failure_rate" and row.to_state == PAUSED
    assert breaker.decide("google", "bulk").allowed


def test_a_provider_refusing_ten_percent_is_not_paused(breaker):
    assert send_mix(breaker, "mx.frobnicator.example", total=600, refused_every=10) == []
    assert breaker.decide("mx.frobnicator.example", "bulk").allowed


def test_recipient_refusals_are_attempts_not_failures(breaker):
    assert send_mix(breaker, "google", total=300, refused_every=2, reply=USER_UNKNOWN) == []
    assert breaker.decide("google", "bulk").allowed


def test_refusals_older_than_the_window_do_not_count(breaker, clock):
    for _ in range(30):  # 30 refusals of 40 attempts: 75 %, but under the minimum sample
        hit(breaker, "mx.frobnicator.example", NEW_BLOCK_TEXT)
    breaker.count_accepted({("mx.frobnicator.example", "bulk"): 10})
    clock.advance(16 * 60)  # the window is 15 minutes
    assert send_mix(breaker, "mx.frobnicator.example", total=100, refused_every=10) == []
    assert breaker.status("mx.frobnicator.example", "bulk")["state"] == OK


def test_bounce_reports_do_not_feed_the_failure_rate(breaker):
    for _ in range(60):
        breaker.record(provider="mx.frobnicator.example", pool="bulk", code=NEW_BLOCK_TEXT[0],
                       text=NEW_BLOCK_TEXT[1], count_rate=False)
    assert breaker.status("mx.frobnicator.example", "bulk")["state"] == OK
