"""Personalisation as editors write it: foreign merge tags caught, every error says what works.

The template language itself is ``sending.render`` (``{{ field }}`` with one
optional ``default`` filter). Editors arrive from other tools and type those
tools' merge tags, which our engine would send as literal text: Mailchimp's
``*|FNAME|*``, Jinja/Liquid/listmonk ``{% if %}``/``{{ .Subscriber.Name }}``,
``%%FirstName%%`` (Salesforce Marketing Cloud AMPscript, Campaign Monitor's
legacy tags), ``[[name]]`` (several ESPs' legacy syntax). ``personalisation_problem``
finds the first such form and says what to write instead; compile errors get
the list of allowed fields and filters appended, so no error leaves the
editor guessing.

Sources: Mailchimp "All the Merge Tags Cheat Sheet" (``*|FNAME|*``,
``*|UNSUB|*``, ``*|UPDATE_PROFILE|*``); listmonk docs "Templating"
(``{{ .Subscriber.Name }}``, ``{{ .Subscriber.Attribs.city }}``, Go
``{{ if }}``); Jinja/Liquid/Django ``{% … %}`` block tags; Salesforce
AMPscript ``%%FirstName%%`` personalisation strings.
"""

from __future__ import annotations

import re

from sending.render import ALLOWED, TemplateError, compile_template

FIELDS = ("subscriber.name", "subscriber.email", "subscriber.attributes.<key>", "email",
          "unsubscribe_url", "one_click_url", "preferences_url", "list_id")
FILTERS = ('default:"…"',)
HELP = (f"Allowed fields: {', '.join('{{ ' + f + ' }}' for f in FIELDS)}; "
        f"allowed filter: {', '.join(FILTERS)} "
        '(e.g. {{ subscriber.name|default:"reader" }}). '
        "Conditions and loops ({% if %}, {% for %}) are not supported.")
# ``track`` is filled in by click tracking when a campaign starts (newsletter.tracking);
# editors never write it, so it is not offered (campaign_errors refuses it).
RESERVED = frozenset({"track"})
if {f.split(".")[0] for f in FIELDS} != ALLOWED - RESERVED:  # not an assert: kept under -O
    raise ImportError("personalisation.FIELDS must list every allowed name")

# Well-known names in other tools -> our field.
_KNOWN = {
    "fname": "subscriber.name", "firstname": "subscriber.name", "first_name": "subscriber.name",
    "name": "subscriber.name", "fullname": "subscriber.name", "full_name": "subscriber.name",
    "email": "subscriber.email", "emailaddress": "subscriber.email",
    "email_address": "subscriber.email", "mail": "subscriber.email",
    "unsub": "unsubscribe_url", "unsubscribe": "unsubscribe_url",
    "unsubscribe_url": "unsubscribe_url", "unsubscribelink": "unsubscribe_url",
    "update_profile": "preferences_url", "preferences": "preferences_url",
    "manage_preferences": "preferences_url", "profile_url": "preferences_url",
    "unsubscribeurl": "unsubscribe_url", "optouturl": "unsubscribe_url",
}

_FOREIGN = [
    ("Mailchimp merge tag", re.compile(r"\*\|\s*([A-Za-z0-9_:]+)\s*\|\*")),
    ("template block tag", re.compile(r"\{%-?\s*([A-Za-z_]\w*)?[^%]*?-?%\}", re.DOTALL)),
    ("%%…%% merge tag", re.compile(r"%%\s*\[?\s*([A-Za-z_][\w.-]*)\s*\]?\s*%%")),
    ("[[…]] merge tag", re.compile(r"\[\[\s*([A-Za-z_][\w.-]*)\s*\]\]")),
]
_GO_FIELD = re.compile(r"\{\{-?\s*\.(Subscriber\.)?(\w+)(?:\.(\w+))?[^}]*\}\}")
_FILTERED = re.compile(r"\{\{\s*([A-Za-z_][\w.-]*)\s*((?:\|[^|}]*)+)\}\}")


def _ours(name: str) -> str:
    """What to write for another tool's field name."""
    key = name.strip().lower().replace("-", "_")
    if key.startswith("subscriber."):
        key = key.partition(".")[2]
    if key in _KNOWN:
        return "{{ " + _KNOWN[key] + " }}"
    attribute = re.sub(r"[^a-z0-9_-]", "_", key) or "key"
    return "{{ subscriber.attributes." + attribute + " }}"


def _foreign(source: str) -> str | None:
    for kind, pattern in _FOREIGN:
        match = pattern.search(source)
        if not match:
            continue
        found = match.group(0)
        where = f"at character {match.start()}"
        if kind == "template block tag":
            tag = match.group(1) or ""
            return (f"{found!r} {where} is a {kind} ({{% {tag} %}}) this editor does not "
                    "understand: it would be sent as literal text. For a fallback when a "
                    'field is empty write {{ subscriber.name|default:"reader" }} instead of '
                    "an if; send different content to different people with an audience "
                    "filter (or a second campaign).")
        return (f"{found!r} {where} is a {kind} from another tool: it would be sent as "
                f"literal text. Write {_ours(match.group(1))} instead.")
    match = _GO_FIELD.search(source)
    if match:
        name = match.group(3) if (match.group(2) or "").lower() in ("attribs", "attributes") \
            and match.group(3) else match.group(2)
        return (f"{match.group(0)!r} at character {match.start()} is listmonk/Go template "
                f"syntax: write {_ours(name or '')} instead (no leading dot).")
    return None


def _filter_problem(source: str) -> str | None:
    for match in _FILTERED.finditer(source):
        for part in match.group(2).split("|")[1:]:
            name = part.split(":", 1)[0].strip()
            if name != "default":
                return (f"{match.group(0)!r} at character {match.start()}: the filter "
                        f"{name!r} is not supported (only default:\"…\", once).")
        if match.group(2).count("|") > 1:
            return (f"{match.group(0)!r} at character {match.start()}: one filter per tag "
                    "(only default:\"…\").")
    return None


def personalisation_problem(source: str, *, html: bool = False) -> str | None:
    """None when ``source`` is valid personalisation; else a message naming the fix."""
    if not source:
        return None
    problem = _foreign(source)
    if problem is None:
        try:
            compile_template(source, html=html)
        except TemplateError as error:
            problem = _filter_problem(source) or str(error)
            if not problem.endswith("."):
                problem += "."
            unknown = re.match(r"unknown field '([^']*)'", str(error))
            if unknown:
                problem += f" Write {_ours(unknown.group(1))} instead."
    if problem is None:
        return None
    return f"{problem} {HELP}"
