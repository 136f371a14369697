"""The content check: the mail as a subscriber gets it (signed), text against images, size,
and a real SpamAssassin's score through a spamd this module starts (never skipped: without
spamd the tests fail and say how to install it)."""

from __future__ import annotations

import email
import email.policy
import os
import signal
import subprocess
from pathlib import Path

import dkim as dkimpy
import pytest

from config.redis_server import free_port, wait_for_port
from config.spamd_server import INSTALL_HINT, spamd_binary, spamd_command
from newsletter import conf
from newsletter.campaign_send import campaign_full_checklist, send_summary
from newsletter.campaigns import checklist_blocking
from newsletter.content_check import (
    GMAIL_CLIP_BYTES,
    content_checks,
    measure_html,
    subscriber_message,
)
from newsletter.spam_score import PLAIN_WORDS, RuleHit, parse_report, plain_words
from sending import dkim
from tests.newsletter.test_campaign_admin import (  # noqa: F401 - fixtures
    Browser,
    _user,
    editor,
    quiet,
    setup,
)
from tests.sending.conftest import sending_env  # noqa: F401 - fixture

pytestmark = pytest.mark.django_db
IMAGE = '<img src="https://shop.example/spring.jpg" width="600" height="400" alt="Spring">'
PROSE = ("Our spring catalogue is here. This season we restocked the garden tools you "
         "asked for, added a line of hand-made ceramic planters from a workshop near "
         "Leipzig, and extended the opening hours of the shop on Saturdays until six. ")


@pytest.fixture(scope="session")
def spamd(tmp_path_factory):
    """A real spamd on a free loopback port, the package's rules, no DNS tests."""
    binary = spamd_binary()
    if binary is None:
        pytest.fail(f"These tests need SpamAssassin's spamd, which is not installed: "
                    f"{INSTALL_HINT} (`make test` installs it as root on Debian).")
    folder = tmp_path_factory.mktemp("spamd")
    port = free_port()
    process = subprocess.Popen(spamd_command(binary, port, folder, local_only=True),
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        wait_for_port("127.0.0.1", port, 120)
    except TimeoutError:
        process.kill()
        log = folder / "spamd.log"
        pytest.fail("spamd did not start: " + (process.stdout.read().decode()[-2000:])
                    + (log.read_text()[-2000:] if log.exists() else ""))
    yield f"spamd://127.0.0.1:{port}"
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(15)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def scored(monkeypatch, spamd, quiet, redis_client):  # noqa: F811
    monkeypatch.setattr(conf, "SPAMD_URL", spamd)
    return spamd


def _check(checks, start):
    return next(c for c in checks if c.name.startswith(start))


def _spam(checks):
    return next(c for c in checks if c.name.startswith("SpamAssassin"))


def test_a_short_mail_with_one_image_is_warned_and_scored_by_spamassassin(setup, scored):  # noqa: F811
    campaign = setup["campaign"]
    campaign.body_format, campaign.body = "html", f"<p>Spring is here!</p>{IMAGE}"
    campaign.save()
    checks = campaign_full_checklist(campaign)
    images = _check(checks, "Enough text for its images")
    assert images.level == "warning" and "HTML_IMAGE_ONLY" in images.detail
    spam = _spam(checks)
    assert "points; SpamAssassin marks mail as spam at 5.0" in spam.detail
    hit = [i for i in spam.items if i.startswith("HTML_IMAGE_ONLY_")]
    assert hit and "little text with pictures" in hit[0]  # the rule, its points, in plain words
    points = float(spam.detail.split(" points")[0])
    assert points >= 1.0  # HTML_IMAGE_ONLY_* alone scores 1.2 to 2.8
    assert not checklist_blocking([c for c in checks if c in (images, spam)])


def test_a_normal_text_mail_scores_low(setup, scored):  # noqa: F811
    campaign = setup["campaign"]
    campaign.body = (PROSE * 4) + "\n\nSee you in the shop,\n\nAnn from ACME"
    campaign.save()
    checks = content_checks(campaign)
    spam = _spam(checks)
    assert spam.level == "ok", spam
    assert float(spam.detail.split(" points")[0]) < 2.5
    assert _check(checks, "Enough text for its images").detail == "no images"
    assert _check(checks, "HTML small enough").level == "ok"


def test_an_unreachable_spamd_is_a_warning_not_an_error(setup, quiet, monkeypatch,  # noqa: F811
                                                        redis_client):
    monkeypatch.setattr(conf, "SPAMD_URL", f"spamd://127.0.0.1:{free_port()}")
    monkeypatch.setattr(conf, "SPAMD_TIMEOUT_S", 2)
    checks = campaign_full_checklist(setup["campaign"])
    spam = _spam(checks)
    assert spam.level == "warning" and spam.detail.startswith("could not run: spamd at")
    assert spam not in send_summary(setup["campaign"]).blocking


def test_score_levels_warn_from_half_the_threshold_and_never_block():
    from newsletter.content_check import score_check
    from newsletter.spam_score import SpamScore

    rules = (RuleHit("SUBJ_ALL_CAPS", 0.5, "Subject is all capitals"),
             RuleHit("HTML_IMAGE_ONLY_28", 2.8, "BODY: HTML: images with 2400-2800 bytes"))
    low, half, spam = (score_check(SpamScore(score, 5.0, rules)) for score in (2.4, 2.5, 5.0))
    assert (low.level, half.level, spam.level) == ("ok", "warning", "warning")
    assert spam.name == "SpamAssassin marks this mail as spam"
    assert spam.items[0].startswith("HTML_IMAGE_ONLY_28 (+2.8): ")  # the most points first
    assert "capitals" in spam.items[1]
    assert not checklist_blocking([low, half, spam])


def test_no_spamd_url_says_not_checked(setup, quiet, monkeypatch):  # noqa: F811
    monkeypatch.setattr(conf, "SPAMD_URL", "")
    spam = _spam(content_checks(setup["campaign"]))
    assert spam.level == "ok" and spam.detail.startswith("not checked: SPAMD_URL")


def test_the_score_is_cached_per_content(setup, scored, redis_client):  # noqa: F811
    campaign = setup["campaign"]
    first = _spam(content_checks(campaign))
    keys = redis_client.keys("newsletter:spamscore:*")
    assert len(keys) == 1 and 3000 < redis_client.ttl(keys[0]) <= 3600
    assert _spam(content_checks(campaign)) == first
    assert len(redis_client.keys("newsletter:spamscore:*")) == 1  # the same content
    campaign.body += " And a new line."
    campaign.save()
    content_checks(campaign)
    assert len(redis_client.keys("newsletter:spamscore:*")) == 2


def test_the_message_is_what_a_subscriber_gets_signed(setup, quiet, sending_env):  # noqa: F811
    campaign = setup["campaign"]
    campaign.body = "Read [the catalogue](https://shop.example/catalogue)."
    campaign.track_clicks = True
    campaign.save()
    record = dkim.generate_rsa_key(Path(os.environ["DKIM_KEY_DIR"]), "shop.example", "pw1")
    raw = subscriber_message(campaign).signed
    message = email.message_from_bytes(raw, policy=email.policy.default)
    assert message["To"] == "ann@example.org" and message["Subject"] == "Hello Ann"
    assert message["Return-Path"].startswith("<bounces+")
    assert "/u/" in message["List-Unsubscribe"] and message["List-Id"]
    assert message["Feedback-ID"] and message["X-PW-Delivery"]
    html = message.get_body(("html",)).get_content()
    assert "/c/" in html and "https://shop.example/catalogue" not in html  # tracked link
    assert dkimpy.verify(raw, dnsfunc=lambda name, timeout=5: record.encode())


def test_size_over_gmails_clip_is_a_warning(setup, quiet):  # noqa: F811
    campaign = setup["campaign"]
    campaign.body = "\n\n".join([PROSE] * (GMAIL_CLIP_BYTES // len(PROSE) + 50))
    campaign.save()
    size = _check(content_checks(campaign), "HTML small enough")
    assert size.level == "warning" and "[Message clipped]" in size.detail


def test_text_and_images_are_measured_as_spamassassin_does():
    found = measure_html('<html><head><style>p{color:red}</style></head><body>'
                         '<p>Two words</p><img src="a.png"><img src="b.png" width="50%">'
                         '</body></html>')
    assert (found.text_bytes, found.non_blank, found.images) == (9, 8, 2)
    assert found.html_bytes == 128  # HTML_IMAGE_ONLY counts the whole source
    assert found.image_area == 200 * 200 + 400 * 200  # 200 px when not given, % of 800x600


def test_images_in_a_long_html_are_fine():
    from newsletter.content_check import text_image_check

    short = f"<html><body><p>{PROSE}</p>{IMAGE}</body></html>"
    assert text_image_check(short).level == "warning"
    long = f"<html><body><p>{PROSE * 16}</p>{IMAGE}</body></html>"
    assert len(long) > 3200 and text_image_check(long).level == "ok"


def test_spamd_report_lines_are_parsed_with_wrapped_descriptions():
    body = ("Content analysis details:   (2.8 points, 5.0 required)\n\n"
            " pts rule name              description\n"
            "---- ---------------------- --------------------------------------------------\n"
            " 2.8 HTML_IMAGE_ONLY_28     BODY: HTML: images with 2400-2800 bytes of words\n"
            "-0.1 DKIM_VALID             Message has at least one valid DKIM or DK\n"
            "                            signature\n")
    hits = parse_report(body)
    assert hits == (RuleHit("HTML_IMAGE_ONLY_28", 2.8, "BODY: HTML: images with 2400-2800 "
                                                         "bytes of words"),
                    RuleHit("DKIM_VALID", -0.1,
                            "Message has at least one valid DKIM or DK signature"))
    assert plain_words(RuleHit("SOME_NEW_RULE", 1.0, "its own words")) == "its own words"


def test_every_plain_words_rule_exists_in_the_installed_rules():
    folders = [Path("/usr/share/spamassassin"), *Path("/var/lib/spamassassin").glob("*/*")]
    text = "".join(p.read_text("latin-1") for f in folders if f.is_dir()
                   for p in f.glob("*.cf"))
    assert text, f"no SpamAssassin rules found: {INSTALL_HINT}"
    for rule in PLAIN_WORDS:
        assert f" {rule}" in text, rule


def test_the_change_page_lists_the_rules_hit(editor, setup, scored):  # noqa: F811
    campaign = setup["campaign"]
    campaign.body_format, campaign.body = "html", f"<p>Hi</p>{IMAGE}"
    campaign.save()
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/change/").content.decode()
    assert "SpamAssassin" in page and '<ul class="pw-check-items"><li>HTML_IMAGE_ONLY_' in page
    page = editor.get(f"/admin/newsletter/campaign/{campaign.pk}/send-now/").content.decode()
    assert "Enough text for its images" in page and "HTML_IMAGE_ONLY_" in page
