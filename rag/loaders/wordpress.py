"""WordPress WXR exports, every version WordPress writes (1.0 to 1.2, under an http:// or https:// namespace).

Only a published post becomes a document; a scheduled one becomes a document under embargo until its time.
Pages, attachments, menu items and any other post type, posts in WordPress's unpublished statuses (draft,
pending, private, ...) and password-protected posts are counted as left out by type and status. A post whose
type or status is missing, empty, given twice or not one WordPress has is not known to be published: it is
left out as a Problem that names the file, the item and the value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from lxml import etree

from . import base, rules
from .base import Item, Problem, Skipped, Unreadable
from .markup import WP_EXCERPT_NS, day, html_text, present, scoped_id, site_url, text_of, wp_namespace

POST = "post"
PUBLISHED = "publish"
SCHEDULED = "future"
# WordPress's own statuses that are not published. A status outside these and the two above (a plugin's, a
# typo) is not known to mean published, so its post is left out as a problem rather than counted.
UNPUBLISHED = ("draft", "pending", "private", "trash", "auto-draft", "inherit")

_CONTENT_NS = "http://purl.org/rss/1.0/modules/content/"
_DC_NS = "http://purl.org/dc/elements/1.1/"
# A site-local time with no zone is read at the latest instant it can mean (the zones run from UTC-12 to
# UTC+14), so a scheduled post never appears before its time; at worst (a UTC+14 site) 26 hours late.
_LATEST_OFFSET = timedelta(hours=12)


@dataclass(frozen=True)
class Site:
    """What every item of one export shares."""

    ns: str  # the export's WordPress namespace
    url: str | None  # wp:base_blog_url, else the channel's link (see markup.site_url)
    file_name: str
    authors: Mapping[str, str]  # login -> display name

    def tag(self, name: str) -> str:
        return f"{{{self.ns}}}{name}"


def wxr(root: etree._Element, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """Each item of a WordPress export: a document, a counted skip or a problem (see the module's doc)."""
    ns = wp_namespace(root)
    if ns is None:
        shown = sorted({v for v in root.nsmap.values() if v and "wordpress" in v.lower()})
        yield Problem(src, f"a WordPress export in a namespace this loader does not know ({', '.join(shown) or 'none'};"
                           " known: http(s)://wordpress.org/export/N.N/): none of its items ingested")
        return
    site = _site(root, ns, src)
    for number, item in enumerate(root.findall("channel/item"), start=1):
        yield _post(item, site, number, src, meta, public)


def _site(root: etree._Element, ns: str, src: str) -> Site:
    channel = root.find("channel")

    def channel_text(path: str) -> str:
        return text_of(channel.find(path)) if channel is not None else ""

    url = site_url(channel_text(f"{{{ns}}}base_blog_url")) or site_url(channel_text("link"))
    authors = {}
    for author in root.findall(f"channel/{{{ns}}}author"):
        login = text_of(author.find(f"{{{ns}}}author_login"))
        if login:
            authors[login] = text_of(author.find(f"{{{ns}}}author_display_name")) or login
    return Site(ns, url, Path(src).name, authors)


def _post(item: etree._Element, site: Site, number: int, src: str, meta: Mapping[str, Any], public: str) -> Item:
    try:
        post_type = _one(item, site, "post_type")
        if post_type != POST:
            return Skipped(f"wxr {post_type}")
        status = _one(item, site, "status")
        if status in UNPUBLISHED:
            return Skipped(f"wxr {status} post")
        if status not in (PUBLISHED, SCHEDULED):
            raise Unreadable(f"unknown wp:status {status!r}")
        if text_of(item.find(site.tag("post_password"))):
            # WordPress shows such a post only to readers who type its password: not for every archive reader.
            return Skipped("wxr password-protected post")
        scheduled = _schedule(item, site) if status == SCHEDULED else None
        rule_meta = _rule_meta(item, site)
    except Unreadable as exc:
        return Problem(src, f"{exc}: {_describe(item, site)} is not known to be published, left out", number)
    fields = {**meta, **present({
        "title": text_of(item.find("title")),
        "text": html_text(item.findtext(f"{{{_CONTENT_NS}}}encoded") or ""),
        "excerpt": html_text(_excerpt(item)),
        "url": text_of(item.find("link")),
        # post_date_gmt is "0000-00-00 00:00:00" in some exports (drafts, old imports): then the site-local date.
        "published": (day(item.findtext(site.tag("post_date_gmt"))) or day(item.findtext(site.tag("post_date")))
                      or day(text_of(item.find("pubDate")))),
        "byline": _byline(item, site),
        "categories": _terms(item, ("category", None)),  # WXR 1.0 writes each category once without a domain
        "tags": _terms(item, ("post_tag", "tag")),  # and its tags under "tag"
    }), **rule_meta}
    if scheduled:
        _embargo_at_least(fields, scheduled)
    doc = base.item_document(_doc_id(item, site, number), fields, src, public, number)
    return base.held(doc, "wxr future post") if scheduled else doc


def _one(item: etree._Element, site: Site, name: str) -> str:
    """The one value of the item's wp:`name`; Unreadable when it is missing, empty or given twice differently."""
    values = [text_of(el) for el in item.findall(site.tag(name))]
    if not values:
        raise Unreadable(f"no wp:{name}")
    if len(set(values)) > 1:
        raise Unreadable(f"{len(values)} different wp:{name} values {values!r}")
    if not values[0]:
        raise Unreadable(f"empty wp:{name}")
    return values[0]


def _schedule(item: etree._Element, site: Site) -> str:
    """When a scheduled post may appear, as an embargo_until value."""
    gmt = _wp_time(item, site, "post_date_gmt")
    if gmt is not None:
        return rules.embargo(gmt.replace(tzinfo=UTC))
    local = _wp_time(item, site, "post_date")  # the site's own clock: its zone is not in the export
    if local is not None:
        return rules.embargo((local + _LATEST_OFFSET).replace(tzinfo=UTC))
    raise Unreadable("a scheduled post (wp:status 'future') with no wp:post_date_gmt or wp:post_date")


def _wp_time(item: etree._Element, site: Site, name: str) -> datetime | None:
    """A WordPress date ("2030-01-01 19:00:18"); None when absent or zero ("0000-00-00 00:00:00")."""
    value = text_of(item.find(site.tag(name)))
    if not value or value.startswith("0000-00-00"):
        return None
    try:
        when = datetime.fromisoformat(value)
    except ValueError:
        raise Unreadable(f"unreadable wp:{name} {value!r}") from None
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def _embargo_at_least(fields: dict[str, Any], until: str) -> None:
    """Set the embargo to `until`, or keep the post meta's own embargo where that is later."""
    given = fields.get("embargo_until")
    if given in (None, ""):
        fields["embargo_until"] = until
        return
    try:
        fields["embargo_until"] = max(rules.embargo(given), until)  # both "YYYY-MM-DDTHH:MM:SSZ"
    except rules.RuleError:
        pass  # the bad value stays, and rules.apply rejects the post naming it


def _rule_meta(item: etree._Element, site: Site) -> dict[str, str]:
    """The rule fields (embargo_until, desks, status, correction) set as post meta."""
    found: dict[str, list[str]] = {}
    for pm in item.findall(site.tag("postmeta")):
        key = text_of(pm.find(site.tag("meta_key")))
        if key in rules.FIELDS:
            found.setdefault(key, []).append((pm.findtext(site.tag("meta_value")) or "").strip())
    for key, values in found.items():
        if len(set(values)) > 1:
            raise Unreadable(f"{len(values)} different values of the post meta {key!r}: {values!r}")
    return {key: values[0] for key, values in found.items()}


def _excerpt(item: etree._Element) -> str:
    for el in item.iterchildren("{*}encoded"):
        ns = etree.QName(el).namespace
        if ns and WP_EXCERPT_NS.fullmatch(ns):
            return el.text or ""
    return ""


def _byline(item: etree._Element, site: Site) -> str:
    login = text_of(item.find(f"{{{_DC_NS}}}creator"))
    return site.authors.get(login, login)


def _terms(item: etree._Element, domains: tuple[str | None, ...]) -> list[str]:
    names = [text_of(c) for c in item.findall("category") if c.get("domain") in domains]
    return list(dict.fromkeys(n for n in names if n))


def _doc_id(item: etree._Element, site: Site, number: int) -> str:
    """The post's id within its site: WordPress's short link for it (https://site/?p=ID, the guid WordPress
    gives a new post), so that two posts sharing a guid (a copied post) are two documents and the same post in
    a later export keeps its id; see markup.scoped_id for sites on localhost and exports without a site."""
    post_id = text_of(item.find(site.tag("post_id")))
    if post_id:
        return scoped_id(f"{site.url or ''}/?p={post_id}", site.url, site.file_name)
    guid = text_of(item.find("guid")) or text_of(item.find("link"))
    if guid:
        return scoped_id(guid, site.url, site.file_name)
    return f"{Path(site.file_name).stem}-{number}"


def _describe(item: etree._Element, site: Site) -> str:
    title = text_of(item.find("title"))
    post_id = text_of(item.find(site.tag("post_id")))
    return f"item {title!r}" + (f" (wp:post_id {post_id})" if post_id else "")
