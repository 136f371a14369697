"""Campaign content as templates: body into layout, CSS inlined, text part from HTML.

Pure functions (no ORM). The output is personalisation *source*
(``sending.render`` syntax), compiled once per mailing by the sending engine and
rendered per recipient. Personalisation tags are swapped for inert tokens while
Markdown, the CSS inliner and the text converter run, so none of them can
mangle a tag (quotes in ``|default:"x"``, for instance).
"""

from __future__ import annotations

import html as html_lib
import re
import secrets
from dataclasses import dataclass
from html.parser import HTMLParser

import css_inline
import markdown

_TAG = re.compile(r"\{\{.*?\}\}", re.DOTALL)
_SLOT = re.compile(r"\{\{\s*(content|postal_address|preheader)\s*\}\}")

DEFAULT_LAYOUT_NAME = "Default (responsive)"
DEFAULT_LAYOUT_CSS = """\
body { margin: 0; padding: 0; background: #f3f4f6; }
.wrapper { width: 100%; background: #f3f4f6; padding: 24px 0; }
.container { max-width: 600px; margin: 0 auto; background: #ffffff; border-radius: 6px; }
.content { padding: 28px 32px; font-family: Helvetica, Arial, sans-serif; font-size: 16px;
           line-height: 1.5; color: #1f2937; }
.content h1 { font-size: 24px; line-height: 1.25; margin: 0 0 16px; }
.content h2 { font-size: 20px; margin: 24px 0 12px; }
.content a { color: #1d4ed8; }
.content img { max-width: 100%; height: auto; }
.footer { padding: 16px 32px 28px; font-family: Helvetica, Arial, sans-serif; font-size: 12px;
          line-height: 1.5; color: #6b7280; text-align: center; }
.footer a { color: #6b7280; }
.preheader { display: none; max-height: 0; overflow: hidden; mso-hide: all; }
"""
DEFAULT_LAYOUT_HTML = """\
<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="x-apple-disable-message-reformatting">
<style>
@media only screen and (max-width: 620px) {
  .content, .footer { padding-left: 16px !important; padding-right: 16px !important; }
  .wrapper { padding: 0 !important; }
  .container { border-radius: 0 !important; }
}
</style>
</head>
<body>
<div class="preheader">{{ preheader }}</div>
<table role="presentation" class="wrapper" width="100%" cellpadding="0" cellspacing="0"><tr><td>
<table role="presentation" class="container" width="100%" cellpadding="0" cellspacing="0">
<tr><td class="content">
{{ content }}
</td></tr>
<tr><td class="footer">
<p>You receive this because you subscribed to our newsletter.
<a href="{{ unsubscribe_url }}">Unsubscribe</a> &middot;
<a href="{{ preferences_url }}">Manage your preferences</a></p>
<p>{{ postal_address }}</p>
</td></tr>
</table>
</td></tr></table>
</body>
</html>
"""


class LayoutError(ValueError):
    """A layout lacks its content slot, unsubscribe link or postal address."""


def layout_problems(html: str, postal_address: str) -> list[str]:
    """What is wrong with a layout (empty list: fine)."""
    problems = []
    slots = re.findall(r"\{\{\s*content\s*\}\}", html)
    if len(slots) != 1:
        problems.append("The layout must contain the {{ content }} slot exactly once "
                        f"(found {len(slots)}).")
        return problems
    footer = html[re.search(r"\{\{\s*content\s*\}\}", html).end():]
    if not re.search(r"\{\{\s*unsubscribe_url\s*\}\}", footer):
        problems.append("The footer (after {{ content }}) must contain the unsubscribe link "
                        "{{ unsubscribe_url }}.")
    if not re.search(r"\{\{\s*postal_address\s*\}\}", footer) and not (
            postal_address.strip() and postal_address.strip() in footer):
        problems.append("The footer (after {{ content }}) must contain the postal address "
                        "({{ postal_address }}).")
    if not postal_address.strip():
        problems.append("The layout has no postal address: fill in the sender's postal "
                        "address (required in every marketing mail).")
    return problems


class _Shield:
    """Replace personalisation tags by inert tokens, and put them back later."""

    def __init__(self):
        self.prefix = f"pwtag{secrets.token_hex(4)}x"
        self.tags: list[str] = []

    def hide(self, text: str) -> str:
        def swap(match: re.Match) -> str:
            self.tags.append(match.group(0))
            return f"{self.prefix}{len(self.tags) - 1}z"

        return _TAG.sub(swap, text)

    def show(self, text: str) -> str:
        return re.sub(rf"{self.prefix}(\d+)z", lambda m: self.tags[int(m.group(1))], text)


@dataclass(frozen=True)
class Parts:
    html: str
    text: str


def body_html(body: str, body_format: str) -> str:
    if body_format == "markdown":
        shield = _Shield()
        return shield.show(markdown.markdown(shield.hide(body),
                                             extensions=["extra", "sane_lists"]))
    return body


# A URL attribute whose value starts with one slash (root-relative: "/media/x.png"), not
# two (protocol-relative) nor a backslash (which browsers read as a slash).
_ROOT_RELATIVE = re.compile(r"""(\s(?:src|href|background)\s*=\s*["']?)/(?![/\\])""",
                            re.IGNORECASE)
_OPEN_TAG = re.compile(r"<[A-Za-z][^>]*>")


def absolute_urls(html: str, base_url: str) -> str:
    """Root-relative ``src``/``href``/``background`` values made absolute against the site.

    A mail has no address of its own, so a client cannot resolve ``/media/x.png``; the
    same value in a browser (the preview, the archive) means our site, so the absolute
    form is what the editor meant. Only attributes inside tags are touched, and
    personalisation tags are shielded meanwhile."""
    if not base_url:
        return html
    base = base_url.rstrip("/")
    shield = _Shield()
    hidden = _OPEN_TAG.sub(lambda tag: _ROOT_RELATIVE.sub(
        lambda m: f"{m.group(1)}{base}/", tag.group(0)), shield.hide(html))
    return shield.show(hidden)


def assemble(*, body: str, body_format: str, layout_html: str, layout_css: str,
             postal_address: str, preheader: str, text_body: str = "",
             base_url: str = "") -> Parts:
    """The HTML and text templates of a campaign (still with personalisation tags).

    ``base_url`` (the site's, as in every link of a mail) makes root-relative image and
    link addresses absolute, in the layout and the body alike."""
    content = body_html(body, body_format)
    values = {
        "content": content,
        "postal_address": html_lib.escape(postal_address, quote=False).replace("\n", "<br>"),
        "preheader": html_lib.escape(preheader, quote=False),
    }
    document = absolute_urls(_SLOT.sub(lambda m: values[m.group(1)], layout_html), base_url)
    shield = _Shield()
    hidden = shield.hide(document)
    inliner = css_inline.CSSInliner(extra_css=layout_css or None, keep_style_tags=True,
                                    load_remote_stylesheets=False)
    inlined = shield.show(inliner.inline(hidden))
    text = text_body.strip() or html_to_text(document, skip_classes=("preheader",))
    return Parts(html=inlined, text=text.rstrip() + "\n")


_BLOCK = {"p", "div", "table", "tr", "h1", "h2", "h3", "h4", "h5", "h6", "ul", "ol",
          "blockquote", "pre", "section", "article", "header", "footer", "hr"}
_SKIP = {"style", "script", "head", "title"}


class _TextMaker(HTMLParser):
    def __init__(self, skip_classes: tuple[str, ...]):
        super().__init__(convert_charrefs=True)
        self.out: list[str] = []
        self.skip = 0
        self.skip_classes = set(skip_classes)
        self.stack: list[tuple[str, bool]] = []
        self.links: list[str | None] = []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        hidden = tag in _SKIP or bool(set((attrs.get("class") or "").split())
                                      & self.skip_classes)
        if tag not in ("br", "img", "hr", "meta", "link", "input"):
            self.stack.append((tag, hidden))
            if hidden:
                self.skip += 1
        if self.skip:
            return
        if tag == "br":
            self.out.append("\n")
        elif tag in _BLOCK:
            self.out.append("\n\n")
        elif tag == "li":
            self.out.append("\n- ")
        elif tag == "td":
            self.out.append(" ")
        elif tag == "img" and attrs.get("alt"):
            self.out.append(f"[{attrs['alt']}]")
        if tag == "a":
            self.links.append(attrs.get("href"))
            self.out.append("")
            self._link_start = len("".join(self.out))

    def handle_endtag(self, tag):
        while self.stack:
            name, hidden = self.stack.pop()
            if hidden:
                self.skip -= 1
            if name == tag:
                break
        if self.skip:
            return
        if tag == "a" and self.links:
            href = self.links.pop()
            label = "".join(self.out)[self._link_start:].strip()
            if href and not href.startswith("#") and href != label:
                self.out.append(f" ({href})" if label else href)
        elif tag in _BLOCK:
            self.out.append("\n\n")

    def handle_data(self, data):
        if not self.skip:
            self.out.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str, skip_classes: tuple[str, ...] = ()) -> str:
    """A readable plain-text version: paragraphs, list items, links as ``text (url)``."""
    maker = _TextMaker(skip_classes)
    maker.feed(html)
    maker.close()
    text = "".join(maker.out)
    lines = [line.strip() for line in text.splitlines()]
    text = "\n".join(lines)
    return re.sub(r"\n{3,}", "\n\n", text).strip()
