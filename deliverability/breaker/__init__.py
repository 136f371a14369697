"""The provider circuit breaker: pause a provider after repeated blocks.

``rules`` maps SMTP answers to classes (versioned data in ``rules.toml``),
``engine`` keeps the per provider x pool state in Redis and decides, and the
gate (``deliverability.gate``) asks it before each message.
"""
