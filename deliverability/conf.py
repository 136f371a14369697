"""Settings of the deliverability app, read through config.env."""

from config.env import (
    ConfigError,
    env_bool,
    env_float,
    env_int,
    env_list,
    env_port,
    env_str,
    env_url,
)


def env_url_optional(name: str) -> str:
    value = env_str(name)
    return env_url(name, value, schemes=("http", "https")) if value else ""


# Multiplies every breaker duration (1 = real time). Only the block-storm
# benchmark and demos compress time with it.
BREAKER_TIME_SCALE = env_float("BREAKER_TIME_SCALE", 1.0)

# DNS servers for provider lookups and reputation checks ("host" or "host:port",
# comma-separated). Empty: the system's resolvers. Blocklist queries need your
# own recursive resolver: public ones are refused by Spamhaus.
DNS_SERVERS = env_list("DNS_SERVERS", [])

# Group recipient domains by their MX hosts (one DNS lookup per domain, cached).
# Off: only the shipped domain lists are used, every other domain is its own provider.
PROVIDER_MX_LOOKUP = env_bool("PROVIDER_MX_LOOKUP", True)

# --- Bounce intake ---------------------------------------------------------
# The VERP domain. sending/conf.py reads the same variable; deliverability may
# not import sending, so it is read here a second time.
BOUNCE_DOMAIN = env_str("BOUNCE_DOMAIN", "localhost")
# Where ``manage.py bounce_listener`` listens (the bounce domain's MX, or the
# MTA in front of it, delivers here).
BOUNCE_LISTENER_HOST = env_str("BOUNCE_LISTENER_HOST", "127.0.0.1")
BOUNCE_LISTENER_PORT = env_port("BOUNCE_LISTENER_PORT", 2526)
# Larger messages are refused while they are read (SMTP 552 during DATA, the pipe
# with EX_DATAERR, IMAP by their RFC822.SIZE before fetching).
BOUNCE_MAX_BYTES = env_int("BOUNCE_MAX_BYTES", 10 * 1024 * 1024, minimum=1024)
# A message above this size is spooled to a temporary file while it is read.
BOUNCE_SPOOL_BYTES = env_int("BOUNCE_SPOOL_BYTES", 256 * 1024, minimum=1024)
# The classifier reads this much of a message at most (the notice, the status fields
# and the returned headers come first): its memory does not grow with the message.
BOUNCE_CLASSIFY_BYTES = env_int("BOUNCE_CLASSIFY_BYTES", 256 * 1024, minimum=4096)
# The listener's open connections at most, and new connections per peer IP a minute.
BOUNCE_LISTENER_MAX_CONNECTIONS = env_int("BOUNCE_LISTENER_MAX_CONNECTIONS", 50, minimum=1)
BOUNCE_LISTENER_PEER_CONNECTIONS = env_int("BOUNCE_LISTENER_PEER_CONNECTIONS", 10, minimum=1)
BOUNCE_LISTENER_PEER_RATE_PER_MIN = env_int("BOUNCE_LISTENER_PEER_RATE_PER_MIN", 120,
                                            minimum=1)
# Raw bounce bytes kept in the database (compressed) at most: past it the oldest are
# pruned (their events stay) and the operators are alerted.
BOUNCE_RAW_QUOTA_BYTES = env_int("BOUNCE_RAW_QUOTA_BYTES", 2 * 1024 ** 3, minimum=1024 * 1024)
# Domains of the mailto unsubscribe addresses (RFC 2369), read here a second time
# (sending/conf.py reads UNSUBSCRIBE_MAILTO_DOMAIN); the listener accepts them too.
UNSUBSCRIBE_MAILTO_DOMAINS = [d for d in [env_str("UNSUBSCRIBE_MAILTO_DOMAIN", "")] if d]
# Soft bounces for one address (distinct deliveries, no successful delivery
# in between, within the window) before it is suppressed.
SOFT_BOUNCE_LIMIT = env_int("SOFT_BOUNCE_LIMIT", 3, minimum=1)
SOFT_BOUNCE_WINDOW_DAYS = env_int("SOFT_BOUNCE_WINDOW_DAYS", 30, minimum=1)
# IMAP polling of a bounce mailbox (empty host: off).
BOUNCE_IMAP_HOST = env_str("BOUNCE_IMAP_HOST", "")
BOUNCE_IMAP_PORT = env_port("BOUNCE_IMAP_PORT", 993)
BOUNCE_IMAP_SSL = env_bool("BOUNCE_IMAP_SSL", True)
BOUNCE_IMAP_USER = env_str("BOUNCE_IMAP_USER", "")
BOUNCE_IMAP_PASSWORD = env_str("BOUNCE_IMAP_PASSWORD", "")
BOUNCE_IMAP_MAILBOX = env_str("BOUNCE_IMAP_MAILBOX", "INBOX")
BOUNCE_IMAP_DONE_FOLDER = env_str("BOUNCE_IMAP_DONE_FOLDER", "Processed")
BOUNCE_IMAP_REVIEW_FOLDER = env_str("BOUNCE_IMAP_REVIEW_FOLDER", "Review")
BOUNCE_IMAP_POLL_SECONDS = env_int("BOUNCE_IMAP_POLL_SECONDS", 300, minimum=10)

# Called (POST, JSON) on every breaker transition; empty: no webhook.
BREAKER_WEBHOOK_URL = env_url_optional("BREAKER_WEBHOOK_URL")
# Key of the webhook's HMAC-SHA256 signature (README "Signed webhooks"); required with the URL.
BREAKER_WEBHOOK_SECRET = env_str("BREAKER_WEBHOOK_SECRET", "")
if BREAKER_WEBHOOK_URL and len(BREAKER_WEBHOOK_SECRET) < 16:
    raise ConfigError("BREAKER_WEBHOOK_SECRET (16 characters or more) must be set "
                      "when BREAKER_WEBHOOK_URL is: webhook bodies are signed")
