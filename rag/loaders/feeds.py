"""RSS (0.9x, 1.0, 2.0) and Atom (0.3, 1.0) feeds: each entry read by feedparser.

A feed says little about publication, but an entry can carry the Atom Publishing Protocol's
<app:control><app:draft> (RFC 5023), in Atom or RSS alike: "yes" leaves the entry out (counted), "no" or no
such element publishes it, and any other value leaves it out as a Problem naming the file, entry and value.
feedparser names that element by whatever prefix the file gives its namespace, so it is read with lxml.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from . import base
from .base import Item, Problem, Skipped
from .markup import day, html_text, local, present, scoped_id, site_url

# The Atom Publishing Protocol's namespace, and the one its drafts used before RFC 5023.
_APP_NS = ("http://www.w3.org/2007/app", "http://purl.org/atom/app#")


def feed(root: etree._Element, data: bytes, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """Each entry of an RSS or Atom feed: title, content (else summary) as text, link, date, author."""
    import feedparser  # only feeds need it

    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    kind, entry_word = ("atom", "entry") if local(root) == "feed" else ("rss", "item")
    drafts = [_draft(el) for el in _entry_elements(root)]
    if len(drafts) != len(parsed.entries):
        if any(d is not None for d in drafts):
            # Which entry a draft flag belongs to cannot be told: none is known to be published.
            yield Problem(src, f"feedparser read {len(parsed.entries)} entries where the XML has {len(drafts)}, "
                               "some marked app:draft; no entry of the file ingested")
            return
        drafts = [None] * len(parsed.entries)
    site = site_url(parsed.feed.get("link"))
    name, stem = Path(src).name, Path(src).stem
    for number, (entry, draft) in enumerate(zip(parsed.entries, drafts), start=1):
        if draft == "yes":
            yield Skipped(f"{kind} draft {entry_word}")
            continue
        if draft not in (None, "no"):
            yield Problem(src, f"unknown app:draft value {draft!r} (RFC 5023 allows yes or no): "
                               f"{entry_word} {entry.get('title', '')!r} is not known to be published, left out",
                          number)
            continue
        content = entry.get("content") or []
        body = content[0].get("value", "") if content else entry.get("summary", "")
        fields = {**meta, **present({
            "title": entry.get("title", ""),
            "text": html_text(body),
            "url": _web_link(entry.get("link", "")),
            "published": day(entry.get("published_parsed") or entry.get("updated_parsed")),
            "byline": entry.get("author", ""),
        })}
        ident = entry.get("id") or entry.get("link")
        doc_id = scoped_id(ident, site, name) if ident else f"{stem}-{number}"
        yield base.item_document(doc_id, fields, src, public, number)


def _web_link(link: str) -> str:
    """A link readers can open: feedparser gives an Atom entry without a link its id (a urn:uuid:) instead."""
    return link if link.lower().startswith(("http://", "https://")) else ""


def _entry_elements(root: etree._Element) -> list[etree._Element]:
    """The XML elements of the entries feedparser reads, in the same order: Atom's <entry>, RSS 2.0's
    channel/<item>, RSS 1.0's <item> under the root."""
    return [el for el in root.iter() if local(el) in ("entry", "item") and el.getparent() is not None
            and (el.getparent() is root or local(el.getparent()) == "channel")]


def _draft(entry: etree._Element) -> str | None:
    """The entry's app:draft value (lower-cased), "no" for an app:control without one, None without either."""
    for ns in _APP_NS:
        control = entry.find(f"{{{ns}}}control")
        if control is not None:
            values = [(d.text or "").strip().lower() for d in control.findall(f"{{{ns}}}draft")]
            if len(set(values)) > 1:
                return " / ".join(values)  # two different answers: not a value that publishes
            return values[0] if values else "no"
    return None
