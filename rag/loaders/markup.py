"""What the XML formats share: safe parsing, the root sniff, body text from markup, dates and ids."""

from __future__ import annotations

import ipaddress
import re
from datetime import datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import urlsplit

from lxml import etree
from lxml import html as lxml_html

XML_SUFFIXES = (".xml", ".rss", ".atom")
NEWSML_NS = "http://iptc.org/std/nar/2006-10-01/"
# Atom 1.0, Atom 0.3, and a <feed> in no namespace (early Atom drafts wrote one): feedparser reads them all.
ATOM_NS = ("http://www.w3.org/2005/Atom", "http://purl.org/atom/ns#", "")
# WordPress has written WXR 1.0 to 1.2 under http://, and WordPress.com writes https://: matched by pattern, so
# the next version is read too. The excerpt namespace (".../excerpt/") is a different one.
WP_NS = re.compile(r"https?://wordpress\.org/export/\d+\.\d+/")
WP_EXCERPT_NS = re.compile(r"https?://wordpress\.org/export/\d+\.\d+/excerpt/")

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
    if name == "rss" and (wp_namespace(root) or _looks_like_wxr(root)):
        return "wxr"  # a WordPress export is never read as a plain feed: its drafts and pages would be published
    if name in ("rss", "RDF") or (name == "feed" and ns in ATOM_NS):
        return "feed"
    # Any NewsML-G2 item (news, package, concept, planning ...) or a message of them: the loader reads the news
    # items and counts the others as left out.
    if ns == NEWSML_NS and (name == "newsMessage" or name.endswith("Item")):
        return "newsml"
    if name == "nitf":
        return "nitf"
    return None


def wp_namespace(root: etree._Element) -> str | None:
    """The WordPress export namespace a WXR file uses: the one its <wp:wxr_version> is in, else the one it
    declares (under the prefix `wp` first); None when it is not a WXR file."""
    channel = root.find("channel")
    if channel is not None:
        for el in channel.iterchildren("{*}wxr_version"):
            ns = etree.QName(el).namespace
            if ns and WP_NS.fullmatch(ns):
                return ns
    for scope in (root, channel):
        declared = [] if scope is None else [v for v in scope.nsmap.values() if v and WP_NS.fullmatch(v)]
        if declared:
            return scope.nsmap["wp"] if scope.nsmap.get("wp") in declared else declared[0]
    return None


def _looks_like_wxr(root: etree._Element) -> bool:
    """An <rss> that names WordPress's export namespace in a form WP_NS does not match, or has a wxr_version."""
    channel = root.find("channel")
    declared = {**root.nsmap, **(channel.nsmap if channel is not None else {})}.values()
    return (any(v and "wordpress.org/export" in v for v in declared)
            or (channel is not None and channel.find("{*}wxr_version") is not None))


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


# Host names that never name a public site: a WordPress or a feed on them is a developer's or an intranet's, and
# two of them are different sites under the same URL (http://localhost/ above all).
_LOCAL_SUFFIXES = (".localhost", ".local", ".localdomain", ".test", ".invalid", ".internal", ".lan", ".home.arpa")


def site_url(value: str | None) -> str | None:
    """An absolute http(s) URL as the scope of a site's item ids: scheme and host lower-cased, without query,
    fragment or trailing slash (https://Example.org/news/ -> https://example.org/news); None for anything else."""
    if not value or not value.strip():
        return None
    try:
        parts = urlsplit(value.strip())
        host, port = parts.hostname, parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    netloc = host if port is None else f"{host}:{port}"
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}"


def names_a_site(url: str) -> bool:
    """Whether an http(s) URL is on a public host, so that it names one site the world over."""
    try:
        host = (urlsplit(url).hostname or "").rstrip(".")
    except ValueError:
        return False
    if not host:
        return False
    try:
        return ipaddress.ip_address(host).is_global
    except ValueError:
        pass
    return "." in host and host != "localhost" and not host.endswith(_LOCAL_SUFFIXES)


def scoped_id(ident: str, site: str | None, file_name: str) -> str:
    """An item id that does not collide with another source's.

    An id that names one thing the world over is kept: a `urn:` or `tag:` URI, or an http(s) URL on a public
    host (a WordPress post's https://site/?p=12, an article's link). Any other id (a guid like "1001", or a URL
    on localhost, which every developer's WordPress has) is qualified by the site it came from when that is a
    public URL ("https://wire.example::1001"), else by the file's name ("slashes.xml::http://localhost/?p=1").
    The same file read again gives the same ids."""
    ident = ident.strip()
    scheme = ident.partition(":")[0].lower()
    if scheme in ("urn", "tag") or (scheme in ("http", "https") and names_a_site(ident)):
        return ident
    if site and names_a_site(site):
        return f"{site}::{ident}"
    return f"{file_name}::{ident}"
