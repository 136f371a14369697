"""Settings of the ESP webhooks, read through config.env. A provider left unset refuses
every post to its hook (fail closed)."""

from config.env import env_bool, env_int, env_list, env_str

# Amazon SES through SNS: the topic ARNs whose notifications are taken (others: 403).
SES_SNS_TOPIC_ARNS = env_list("SES_SNS_TOPIC_ARNS", [])
# Confirm SNS subscriptions to those topics by fetching their SubscribeURL.
SES_SNS_AUTO_CONFIRM = env_bool("SES_SNS_AUTO_CONFIRM", True)

# SendGrid signed event webhook: the verification key (base64 DER or PEM) from
# Settings > Mail Settings > Event Webhook > Signature Verification.
SENDGRID_WEBHOOK_PUBLIC_KEY = env_str("SENDGRID_WEBHOOK_PUBLIC_KEY", "")
# SendGrid retries a failed post for up to 24 hours; an older signature is refused.
SENDGRID_WEBHOOK_MAX_AGE_S = env_int("SENDGRID_WEBHOOK_MAX_AGE_S", 25 * 3600, minimum=60)

# Mailgun: the HTTP webhook signing key (Sending > Webhooks); timestamps older than
# this are refused, and a token is taken once within it.
MAILGUN_WEBHOOK_SIGNING_KEY = env_str("MAILGUN_WEBHOOK_SIGNING_KEY", "")
MAILGUN_WEBHOOK_MAX_AGE_S = env_int("MAILGUN_WEBHOOK_MAX_AGE_S", 15 * 60, minimum=30)

# Postmark: the HTTP basic auth user and password put in the webhook URL.
POSTMARK_WEBHOOK_USER = env_str("POSTMARK_WEBHOOK_USER", "")
POSTMARK_WEBHOOK_PASSWORD = env_str("POSTMARK_WEBHOOK_PASSWORD", "")
