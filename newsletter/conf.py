"""Settings of the newsletter app, read once through ``config.env``.

Code reads them as ``conf.NAME`` at call time, so tests can change one with
``monkeypatch.setattr(conf, "NAME", value)``. Every variable is documented in
``.env.example``.
"""

from __future__ import annotations

from config.env import ConfigError, env_bool, env_int, env_list, env_str

# --- Signup anti-abuse (sliding windows in Redis, shared by every process) ---
# Signup form submissions accepted per client per hour (IPv4: its address, IPv6: its /64).
SIGNUP_RATE_PER_IP = env_int("SIGNUP_RATE_PER_IP", 20, minimum=1)
# Signup submissions accepted per list per hour (over: a "try later" page).
SIGNUP_RATE_PER_LIST = env_int("SIGNUP_RATE_PER_LIST", 1000, minimum=1)
# Of those, at most this many per client network (IPv4 /24, IPv6 /48) per list and hour,
# so one attacker cannot use up a list's budget for everyone.
SIGNUP_RATE_PER_NETWORK = env_int("SIGNUP_RATE_PER_NETWORK", 100, minimum=1)
# Signup submissions acted on per address per hour (over: same answer, nothing done).
SIGNUP_RATE_PER_ADDRESS = env_int("SIGNUP_RATE_PER_ADDRESS", 10, minimum=1)
# Confirmation mails an address holds at once, not clicked and under 24 hours old; a
# further one waits until one is clicked or 24 hours old (newsletter/confirm_budget.py).
CONFIRMATION_MAILS_PER_ADDRESS = env_int("CONFIRMATION_MAILS_PER_ADDRESS", 3, minimum=1)
# Number of reverse proxies in front of the web server whose X-Forwarded-For is trusted.
SIGNUP_TRUSTED_PROXIES = env_int("SIGNUP_TRUSTED_PROXIES", 0, minimum=0, maximum=5)
# Store signups in a worker (transactional queue) instead of in the web request.
SIGNUP_ASYNC = env_bool("SIGNUP_ASYNC", True)
# Refuse signups whose domain has no MX (or A) record.
SIGNUP_CHECK_MX = env_bool("SIGNUP_CHECK_MX", False)
# DNS servers for that check, "host" or "host:port", comma-separated (empty: the system's).
SIGNUP_DNS_SERVERS = env_list("SIGNUP_DNS_SERVERS", [])

# --- Links in mails ---
# Days a confirmation link stays valid.
CONFIRM_LINK_MAX_AGE_DAYS = env_int("CONFIRM_LINK_MAX_AGE_DAYS", 7, minimum=1)
# Days a preference-page link (name, lists) stays valid.
PREFERENCES_LINK_MAX_AGE_DAYS = env_int("PREFERENCES_LINK_MAX_AGE_DAYS", 180, minimum=1)
# Minutes the link mailed on request for exporting or erasing one's data stays valid.
PRIVACY_LINK_MAX_AGE_MINUTES = env_int("PRIVACY_LINK_MAX_AGE_MINUTES", 60, minimum=5)
# Such links mailed per subscriber per hour (beyond: the same answer, no mail).
PRIVACY_LINK_MAILS_PER_HOUR = env_int("PRIVACY_LINK_MAILS_PER_HOUR", 3, minimum=1)
# Domain part of List-Id values (empty: the host of SITE_URL).
LIST_ID_DOMAIN = env_str("LIST_ID_DOMAIN", "")

# --- Housekeeping ---
# Unconfirmed subscriptions are deleted after this many days (the consent log stays).
PENDING_PURGE_DAYS = env_int("PENDING_PURGE_DAYS", 14, minimum=1)
# Rows per database batch in subscriber imports.
IMPORT_BATCH_ROWS = env_int("IMPORT_BATCH_ROWS", 20000, minimum=100)
# Database connections writing import batches in parallel (PostgreSQL).
IMPORT_WRITERS = env_int("IMPORT_WRITERS", 2, minimum=1, maximum=8)

# --- Campaign start ---
# Pre-flight reputation checks (SPF, DKIM, DMARC, reverse DNS, blocklists) when a
# campaign starts: off, warn (record the failures, send anyway) or block (do not start).
PREFLIGHT_BEFORE_START = env_str("PREFLIGHT_BEFORE_START", "warn").lower()
if PREFLIGHT_BEFORE_START not in ("off", "warn", "block"):
    raise ConfigError(f"PREFLIGHT_BEFORE_START={PREFLIGHT_BEFORE_START!r}: use off, warn or block")

# --- Content check before sending (newsletter.content_check) ---
# A spamd that scores the campaign's mail as a subscriber gets it: spamd://host:port,
# tcp://host:port or unix:///path (empty: no SpamAssassin score; `make run` starts one).
SPAMD_URL = env_str("SPAMD_URL", "")
if SPAMD_URL:
    from newsletter.spam_score import spamd_address

    try:
        spamd_address(SPAMD_URL)
    except ValueError as _error:
        raise ConfigError(f"SPAMD_URL={SPAMD_URL!r}: {_error}") from None
# Seconds the checklist waits for spamd (then a warning; the answer is cached per content).
SPAMD_TIMEOUT_S = env_int("SPAMD_TIMEOUT_S", 10, minimum=1, maximum=120)

# --- Click and open tracking (newsletter.tracking) ---
# Days hits stay linked to a subscriber (campaigns in linked mode); then only counts remain.
TRACKING_LINKED_RETENTION_DAYS = env_int("TRACKING_LINKED_RETENTION_DAYS", 90, minimum=1)
# Optional CSV of proxy ranges whose pixel fetches are machine opens (first column a CIDR),
# e.g. Apple's iCloud Private Relay list, mask-api.icloud.com/egress-ip-ranges.csv.
TRACKING_PROXY_RANGES_FILE = env_str("TRACKING_PROXY_RANGES_FILE", "")
# Milliseconds a web process gathers clicks and opens before pushing them to Redis in one
# call (a crash loses at most that much); 0: push in the request.
TRACKING_FLUSH_MS = env_int("TRACKING_FLUSH_MS", 200, minimum=0, maximum=10000)

# --- Media library (newsletter.media): images for campaigns, served at /media/ ---
# Largest image accepted, in bytes (the upload is refused before it is read beyond this).
MEDIA_MAX_BYTES = env_int("MEDIA_MAX_BYTES", 5 * 1024 * 1024, minimum=1024)
# Largest image accepted, in pixels (width x height): a small file that decodes to a huge
# bitmap (a "decompression bomb") is refused before it is decoded.
MEDIA_MAX_PIXELS = env_int("MEDIA_MAX_PIXELS", 25_000_000, minimum=10_000)
