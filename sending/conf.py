"""Settings of the sending engine, read once through ``config.env``.

Deployment facts only (domains, key folder, timings). Each variable has a line
in ``.env.example``. Read at call time through ``get()`` so tests can change
the environment and call ``reload()``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from config.env import env_bool, env_float, env_int, env_path, env_str


@dataclass(frozen=True)
class SendingConf:
    bounce_domain: str
    unsubscribe_mailto_domain: str
    dkim_key_dir: Path
    dkim_selector: str
    dkim_ed25519_selector: str
    feedback_id_sender: str
    max_age_hours: int
    batch_size: int
    claim_lease_s: int
    redispatch_s: int
    relay_down_s: int
    provider_rate_per_s: float
    pool_rate_per_s: float
    smtp_timeout_s: float
    postmark_metadata: bool


def _read() -> SendingConf:
    from django.conf import settings

    return SendingConf(
        bounce_domain=env_str("BOUNCE_DOMAIN", "localhost"),
        unsubscribe_mailto_domain=env_str("UNSUBSCRIBE_MAILTO_DOMAIN", ""),
        dkim_key_dir=env_path("DKIM_KEY_DIR", Path(settings.DATA_DIR) / "dkim"),
        dkim_selector=env_str("DKIM_SELECTOR", "pw1"),
        dkim_ed25519_selector=env_str("DKIM_ED25519_SELECTOR", ""),
        feedback_id_sender=env_str("FEEDBACK_ID_SENDER", "postwarden"),
        max_age_hours=env_int("NEWSLETTER_MAX_AGE_HOURS", 48, minimum=1),
        batch_size=env_int("SENDING_BATCH_SIZE", 200, minimum=1, maximum=5000),
        claim_lease_s=env_int("SENDING_CLAIM_LEASE_SECONDS", 300, minimum=2),
        redispatch_s=env_int("SENDING_REDISPATCH_SECONDS", 900, minimum=1),
        relay_down_s=env_int("SENDING_RELAY_DOWN_SECONDS", 60, minimum=1),
        provider_rate_per_s=env_float("SENDING_PROVIDER_RATE_PER_S", 100.0),
        pool_rate_per_s=env_float("SENDING_POOL_RATE_PER_S", 0.0),
        smtp_timeout_s=env_float("SENDING_SMTP_TIMEOUT_SECONDS", 60.0),
        # Postmark's events carry its own MessageID and the metadata we set, not ours:
        # on by default where Postmark's webhook is configured (deliverability.esp).
        postmark_metadata=env_bool("POSTMARK_METADATA_HEADER",
                                   bool(env_str("POSTMARK_WEBHOOK_USER", ""))),
    )


_conf: SendingConf | None = None


def get() -> SendingConf:
    global _conf
    if _conf is None:
        _conf = _read()
    return _conf


def reload() -> SendingConf:
    global _conf
    _conf = None
    return get()
