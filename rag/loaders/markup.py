"""What the XML formats share: safe parsing, the root sniff, body text from markup, dates and ids."""

from __future__ import annotations

import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any

from lxml import etree
from lxml import html as lxml_html

XML_SUFFIXES = (".xml", ".rss", ".atom")
NEWSML_NS = "http://iptc.org/std/nar/2006-10-01/"
_WP_NS = re.compile(r"http://wordpress\.org/export/\d+\.\d+/")  # WXR 1.0, 1.1, 1.2 (not its excerpt/ one)

# Elements whose text stands as a paragraph of its own (XHTML, NITF and NewsML body markup alike).
_BLOCKS = {"p", "div", "br", "li", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "pre", "tr", "hl1", "hl2",
           "section", "article", "figcaption", "dt", "dd", "block", "nitf", "body.content"}
_DROPPED = {"script", "style", "noscript", "iframe", "object", "embed", "template"}

_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, remove_comments=True)


def parse(data: bytes) -> etree._Element:
    """The root element; raises etree.XMLSyntaxError when the file is not well-formed."""
    return etree.fromstring(data, parser=_PARSER)


def local(el: Any) -> str:
    tag = el.tag if isinstance(el.tag, str) else ""
    return tag.rpartition("}")[2]


def sniff(root: etree._Element) -> str | None:
    """Which XML family a document is: wxr, feed (RSS 2.0 / RSS 1.0 / Atom), newsml, nitf; None if none."""
    name, ns = local(root), etree.QName(root).namespace or ""
    if name == "rss" and wp_namespace(root):
        return "wxr"
    if name in ("rss", "RDF") or (name == "feed" and ns == "http://www.w3.org/2005/Atom"):
        return "feed"
    if name in ("newsItem", "newsMessage") and ns == NEWSML_NS:
        return "newsml"
    if name == "nitf":
        return "nitf"
    return None


def wp_namespace(root: etree._Element) -> str | None:
    """The WordPress export namespace a WXR file declares, if it declares one."""
    return next((v for v in root.nsmap.values() if v and _WP_NS.fullmatch(v)), None)


def block_text(el: etree._Element | None) -> str:
    """The text of a body element, one paragraph per block element, scripts and styles left out."""
    if el is None:
        return ""
    parts: list[str] = []

    def walk(node: etree._Element) -> None:
        name = local(node)
        if name in _DROPPED:
            if node.tail:
                parts.append(node.tail)
            return
        block = name in _BLOCKS
        if block:
            parts.append("\n\n")
        if node.text and isinstance(node.tag, str):
            parts.append(node.text)
        for child in node:
            walk(child)
        if block:
            parts.append("\n\n")
        if node.tail:
            parts.append(node.tail)

    walk(el)
    text = re.sub(r"[ \t\r\f\v]*\n[ \t\r\f\v]*", "\n", "".join(parts))
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def html_text(fragment: str) -> str:
    """An HTML fragment (a feed's content, a WordPress post) as paragraphs of text."""
    if not fragment or not fragment.strip():
        return ""
    try:
        return block_text(lxml_html.fragment_fromstring(fragment, create_parent="div"))
    except (etree.ParserError, ValueError):
        return ""


def text_of(el: etree._Element | None) -> str:
    return " ".join("".join(el.itertext()).split()) if el is not None else ""


def day(value: Any) -> str | None:
    """A date as YYYY-MM-DD (the form `published` has in the other formats), from ISO 8601 (basic or
    extended), RFC 822 or a `time.struct_time`; None when there is none or it cannot be read."""
    if value is None or value == "":
        return None
    if hasattr(value, "tm_year"):
        return f"{value.tm_year:04d}-{value.tm_mon:02d}-{value.tm_mday:02d}"
    text = str(value).strip()
    m = re.match(r"(\d{4})-?(\d{2})-?(\d{2})", text)
    if m and m.group(1) != "0000":
        try:
            return datetime(int(m.group(1)), int(m.group(2)), int(m.group(3))).strftime("%Y-%m-%d")
        except ValueError:
            return None
    try:
        return parsedate_to_datetime(text).strftime("%Y-%m-%d")
    except (TypeError, ValueError, IndexError):
        return None


def iso_time(value: str) -> str:
    """An ISO 8601 basic time (NITF's 20240501T100000Z) in extended form; other text as given."""
    m = re.fullmatch(r"(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})?(Z|[+-]\d{4})?", value.strip())
    if not m:
        return value.strip()
    y, mo, d, h, mi, s, zone = m.groups()
    zone = "" if zone is None else ("+00:00" if zone == "Z" else f"{zone[:3]}:{zone[3:]}")
    return f"{y}-{mo}-{d}T{h}:{mi}:{s or '00'}{zone}"


def present(fields: dict[str, Any]) -> dict[str, Any]:
    """`fields` without the empty ones, so an item lacking a field gets no key for it."""
    return {k: v for k, v in fields.items() if v not in (None, "", [])}
