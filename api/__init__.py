"""The HTTP API (``/api/v1/``): tokens, lists, subscribers, suppressions, transactional mail."""
