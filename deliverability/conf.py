"""Settings of the deliverability app, read through config.env."""

from config.env import env_float

# Multiplies every breaker duration (1 = real time). Only the block-storm
# benchmark and demos compress time with it.
BREAKER_TIME_SCALE = env_float("BREAKER_TIME_SCALE", 1.0)
