"""Settings of the deliverability app, read through config.env."""

from config.env import env_float, env_list

# Multiplies every breaker duration (1 = real time). Only the block-storm
# benchmark and demos compress time with it.
BREAKER_TIME_SCALE = env_float("BREAKER_TIME_SCALE", 1.0)

# DNS servers for provider lookups and reputation checks ("host" or "host:port",
# comma-separated). Empty: the system's resolvers. Blocklist queries need your
# own recursive resolver: public ones are refused by Spamhaus.
DNS_SERVERS = env_list("DNS_SERVERS", [])
