"""Settings of the test session: the service's own, in debug mode unless told otherwise.

The service defaults to ``DJANGO_DEBUG=false`` (which requires a real secret key);
tests keep running as they did before that default changed. Set here in the
environment, so the workers and commands the tests start see the same.
"""

import os

os.environ.setdefault("DJANGO_DEBUG", "true")

from config.settings import *  # noqa: F403
