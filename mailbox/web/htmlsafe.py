"""HTML mail made safe to show: an allow-list sanitiser (nh3, the Rust ammonia library), remote
content blocked, links opened outside the page.

- Only formatting tags and attributes survive; ``<script>``, ``<style>``, ``<iframe>``,
  ``<object>``, forms, event handlers (``on*``), ``javascript:`` and every other URL scheme but
  ``http``, ``https``, ``mailto`` (links) and ``cid`` (embedded images) are removed, with their
  content for script and style.
- Images: ``cid:`` references become ``data:`` URIs of this message's own parts (raster types
  only, never SVG); ``data:`` raster images stay; any other source (remote ``http(s)://``: a
  tracking pixel tells the sender when and where the mail was read) is dropped and the image
  replaced by its alternative text in brackets. Nothing remote is ever fetched.
- Links keep ``http``, ``https`` and ``mailto`` targets only (no ``javascript:``, no ``data:``,
  no relative URL into the webmail).
- Inline ``style`` keeps a list of harmless properties (no ``url()``: the sanitiser drops
  properties it does not know, and ``background-image`` is not listed).
- Links get ``rel="noopener noreferrer"`` and ``target="_blank"``: the sandboxed frame lets them
  open in a new tab, outside the sandbox, without telling the site where they came from.

The result is served from its own route with a CSP that allows no script at all, inside an
``<iframe sandbox>`` without ``allow-scripts`` (see :mod:`.security`): three independent layers.

Pure functions; must not raise on any input.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from html import escape

import nh3

#: Characters of HTML sanitised per message (the rest is cut: a 25 MB body of nested tags is a
#: denial of service, not a letter).
MAX_HTML = 2_000_000

ALLOWED_TAGS = frozenset(
    {
        "a", "abbr", "b", "blockquote", "br", "caption", "center", "cite", "code", "col",
        "colgroup", "dd", "del", "div", "dl", "dt", "em", "font", "h1", "h2", "h3", "h4", "h5",
        "h6", "hr", "i", "img", "ins", "kbd", "li", "mark", "ol", "p", "pre", "q", "s", "small",
        "span", "strike", "strong", "sub", "sup", "table", "tbody", "td", "tfoot", "th",
        "thead", "tr", "tt", "u", "ul",
    }
)  # fmt: skip
_COMMON = {"align", "dir", "lang", "style", "title"}
ALLOWED_ATTRIBUTES: dict[str, set[str]] = {
    "*": _COMMON,
    "a": {"href"},
    "img": {"src", "alt", "width", "height"},
    "table": {"border", "cellpadding", "cellspacing", "width", "bgcolor"},
    "td": {"colspan", "rowspan", "width", "valign", "bgcolor"},
    "th": {"colspan", "rowspan", "width", "valign", "bgcolor", "scope"},
    "col": {"span", "width"},
    "colgroup": {"span", "width"},
    "font": {"color", "face", "size"},
    "ol": {"start", "type"},
    "ul": {"type"},
}
STYLE_PROPERTIES = frozenset(
    {
        "background-color", "border", "border-bottom", "border-collapse", "border-color",
        "border-left", "border-right", "border-spacing", "border-style", "border-top",
        "border-width", "color", "font", "font-family", "font-size", "font-style",
        "font-weight", "height", "letter-spacing", "line-height", "list-style-type", "margin",
        "margin-bottom", "margin-left", "margin-right", "margin-top", "padding",
        "padding-bottom", "padding-left", "padding-right", "padding-top", "text-align",
        "text-decoration", "text-indent", "text-transform", "vertical-align", "white-space",
        "width", "word-spacing",
    }
)  # fmt: skip
URL_SCHEMES = frozenset({"http", "https", "mailto", "cid", "data"})
#: Embedded images kept as they are (``data:`` URIs of raster types; never SVG).
_DATA_IMAGE = re.compile(r"^data:image/(png|jpeg|gif|webp);base64,", re.IGNORECASE)
#: Remote images are replaced by this, with their alternative text (French).
BLOCKED_IMAGE = "[image distante bloquée{alt}]"

_CID = re.compile(r"^cid:", re.IGNORECASE)


def sanitise(html: str, cid_url: Callable[[str], str | None]) -> tuple[str, int]:
    """Safe HTML for a message body and the number of images blocked. ``cid_url`` maps a
    Content-ID to a ``data:`` URI of this message's image (None: not an image of this message).
    The frame is sandboxed (an opaque origin, without cookies), so embedded images travel inside
    the document rather than being fetched from the webmail."""

    def relative(url: str) -> None:
        return None  # a relative URL would point into the webmail itself

    def attribute_filter(tag: str, name: str, value: str) -> str | None:
        if tag == "img" and name == "src":
            if _CID.match(value):
                return cid_url(value[4:].strip().strip("<>"))
            return value if _DATA_IMAGE.match(value) else None
        if name == "href" and not value.lower().startswith(("http:", "https:", "mailto:")):
            return None
        if name == "style" and "url(" in value.lower():
            return None
        return value

    cleaned = nh3.clean(
        html[:MAX_HTML],
        tags=set(ALLOWED_TAGS),
        attributes={tag: set(names) for tag, names in ALLOWED_ATTRIBUTES.items()},
        attribute_filter=attribute_filter,
        url_schemes=set(URL_SCHEMES),
        link_rel="noopener noreferrer",
        filter_style_properties=set(STYLE_PROPERTIES),
        set_tag_attribute_values={"a": {"target": "_blank"}},
        strip_comments=True,
        url_relative=relative,
    )
    return _replace_sourceless_images(cleaned)


_IMG_WITHOUT_SRC = re.compile(r"<img(?![^>]*\ssrc=)([^>]*)>", re.IGNORECASE)
_ALT = re.compile(r'\salt="([^"]*)"', re.IGNORECASE)


def _replace_sourceless_images(html: str) -> tuple[str, int]:
    """An image whose source was dropped shows its alternative text instead (the sanitiser's
    output is well-formed: attributes double-quoted, text escaped); returns how many."""

    def replace(match: re.Match[str]) -> str:
        alt = _ALT.search(match.group(1))
        text = f" : {alt.group(1)}" if alt and alt.group(1).strip() else ""
        return f"<span>{BLOCKED_IMAGE.format(alt=text)}</span>"

    return _IMG_WITHOUT_SRC.subn(replace, html)


def document(body: str, *, title: str) -> str:
    """A complete HTML document around a sanitised body (served to the sandboxed frame)."""
    return (
        '<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title>"
        '<meta name="referrer" content="no-referrer">'
        "<style>body{font-family:system-ui,sans-serif;line-height:1.5;margin:0.5rem;"
        "color:#1a1a1a;background:#fff;overflow-wrap:anywhere}img{max-width:100%;height:auto}"
        "</style></head><body>"
        f"{body}</body></html>"
    )
