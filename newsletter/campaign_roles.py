"""The "editor" role of the campaign pages; every role is defined in ``config.roles``."""

from __future__ import annotations

from config.roles import EDITOR as EDITOR_GROUP
from config.roles import roles_ensure

__all__ = ["EDITOR_GROUP", "editor_group_ensure"]


def editor_group_ensure():
    """Create (or complete) every role group; returns the editor group (tests use it after
    a flush has emptied the tables)."""
    return roles_ensure()[EDITOR_GROUP]
