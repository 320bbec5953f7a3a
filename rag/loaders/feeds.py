"""Many articles per file: RSS 2.0 / Atom feeds (read by feedparser) and WordPress WXR exports (lxml)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from . import base, rules
from .base import Item, Skipped
from .markup import day, html_text, present, text_of, wp_namespace

# WordPress post types read from a WXR export; pages, attachments and menu items are counted as skipped.
WXR_POST_TYPES = ("post",)
_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_DC_NS = "http://purl.org/dc/elements/1.1/"


def feed(data: bytes, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """Each entry of an RSS or Atom feed: title, content (else summary) as text, link, date, author."""
    import feedparser  # only feeds need it

    parsed = feedparser.parse(data, sanitize_html=True, resolve_relative_uris=False)
    stem = Path(src).stem
    for number, entry in enumerate(parsed.entries, start=1):
        content = entry.get("content") or []
        body = content[0].get("value", "") if content else entry.get("summary", "")
        fields = {**meta, **present({
            "title": entry.get("title", ""),
            "text": html_text(body),
            "url": entry.get("link", ""),
            "published": day(entry.get("published_parsed") or entry.get("updated_parsed")),
            "byline": entry.get("author", ""),
        })}
        ident = entry.get("id") or entry.get("link") or f"{stem}-{number}"
        yield base.item_document(ident, fields, src, public, number)


def wxr(root: etree._Element, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """Each published post of a WordPress export; drafts, private posts and other post types are skipped."""
    wp = wp_namespace(root)
    stem = Path(src).stem

    def wp_text(item: etree._Element, name: str) -> str:
        return (item.findtext(f"{{{wp}}}{name}") or "").strip()

    for number, item in enumerate(root.iter("item"), start=1):
        post_type = wp_text(item, "post_type") or "post"
        status = wp_text(item, "status") or "publish"
        if post_type not in WXR_POST_TYPES:
            yield Skipped(f"wxr {post_type}")
            continue
        if status != "publish":
            yield Skipped(f"wxr {status}")
            continue
        postmeta = {(pm.findtext(f"{{{wp}}}meta_key") or "").strip(): pm.findtext(f"{{{wp}}}meta_value") or ""
                    for pm in item.iter(f"{{{wp}}}postmeta")}
        fields = {**meta, **present({
            "title": text_of(item.find("title")),
            "text": html_text(item.findtext(f"{{{_CONTENT_NS}}}encoded") or ""),
            "url": text_of(item.find("link")),
            "published": day(wp_text(item, "post_date_gmt")) or day(text_of(item.find("pubDate"))),
            "byline": text_of(item.find(f"{{{_DC_NS}}}creator")),
            "categories": _terms(item, "category"),
            "tags": _terms(item, "post_tag"),
        }), **{k: v for k, v in postmeta.items() if k in rules.FIELDS}}
        ident = (text_of(item.find("guid")) or text_of(item.find("link")) or wp_text(item, "post_id")
                 or f"{stem}-{number}")
        yield base.item_document(ident, fields, src, public, number)


def _terms(item: etree._Element, domain: str) -> list[str]:
    return [text_of(c) for c in item.findall("category") if c.get("domain") == domain and text_of(c)]
