"""Agency formats: IPTC NewsML-G2 (a news item, or a newsMessage of items) and NITF (one article a file).

Both say whether an item may be used, and both are read fail-closed:
- NewsML-G2: `pubStatus` (absent means usable, as the schema says) stat:usable is published, stat:withheld and
  stat:canceled are counted as left out, anything else is a Problem; `embargoed` with a time becomes
  `embargo_until`, and an empty <embargoed/> (embargoed until further notice) leaves the item out. Items other
  than text news items (pictures, packages, concepts, planning ...) are counted as left out.
- NITF: docdata's `management-status` (absent means usable) usable is published, withheld and canceled are
  left out, embargoed needs a `date.release` to be held until, anything else is a Problem; `date.release`
  ("the date/time the document is available to be released") becomes `embargo_until`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from . import base
from .base import Item, Problem, Skipped, Unreadable
from .markup import NEWSML_NS, block_text, day, iso_time, local, present, text_of

_N = f"{{{NEWSML_NS}}}"
# IPTC's publishing-status scheme, and the alias IPTC's catalog gives it.
_PUB_STATUS_SCHEME = "http://cv.iptc.org/newscodes/pubstatusg2/"
_PUB_STATUS_ALIAS = "stat"
PUB_STATUSES = ("usable", "withheld", "canceled")
NITF_STATUSES = ("usable", "embargoed", "withheld", "canceled")  # NITF 3.1 and later


@dataclass(frozen=True)
class Status:
    """What an item's own markup says about its publication."""

    left_out: str | None = None  # the reason it is counted as left out, if it is
    embargo_until: str = ""  # the format's embargo, as written


def newsml(root: etree._Element, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """Each newsItem: headline, byline, dateline, the inline body, first/version created, embargo."""
    if local(root) == "newsMessage":
        items = [el for item_set in root.iter(f"{_N}itemSet") for el in item_set if local(el).endswith("Item")]
    else:
        items = [root]
    stem = Path(src).stem
    aliases = _status_aliases(root)
    for number, item in enumerate(items, start=1):
        try:
            status = _newsml_status(item, aliases)
        except Unreadable as exc:
            yield Problem(src, f"{exc}: item {item.get('guid', '')!r} is not known to be usable, left out", number)
            continue
        if status.left_out:
            yield Skipped(status.left_out)
            continue
        content = item.find(f"{_N}contentMeta")
        inline = item.find(f"{_N}contentSet/{_N}inlineXML")
        fields = {**meta, **present({
            "title": text_of(content.find(f"{_N}headline")) if content is not None else "",
            "text": block_text(_body(inline)),
            "byline": text_of(content.find(f"{_N}by")) if content is not None else "",
            "dateline": text_of(content.find(f"{_N}dateline")) if content is not None else "",
            "published": day(item.findtext(f"{_N}itemMeta/{_N}firstCreated")
                             or item.findtext(f"{_N}itemMeta/{_N}versionCreated")),
            "embargo_until": status.embargo_until,
        })}
        doc = base.item_document(item.get("guid") or f"{stem}-{number}", fields, src, public, number)
        yield base.held(doc, "newsml embargoed item") if status.embargo_until else doc


def _status_aliases(root: etree._Element) -> set[str]:
    """The qcode aliases that name IPTC's publishing-status scheme: IPTC's own, and any an inline catalog
    maps to it (a remote catalog is not fetched)."""
    inline = {s.get("alias", "") for s in root.iter(f"{_N}scheme") if s.get("uri") == _PUB_STATUS_SCHEME}
    return {_PUB_STATUS_ALIAS} | inline


def _newsml_status(item: etree._Element, aliases: set[str]) -> Status:
    name = local(item)
    if name != "newsItem":
        return Status(left_out=f"newsml {name}")
    item_class = item.find(f"{_N}itemMeta/{_N}itemClass")
    qcode = item_class.get("qcode", "") if item_class is not None else ""
    if qcode and qcode.partition(":")[2] != "text":  # ninat:picture, ninat:video ...: no article text
        return Status(left_out=f"newsml {qcode} item")
    pub = item.findall(f"{_N}itemMeta/{_N}pubStatus")
    if len(pub) > 1:
        raise Unreadable(f"{len(pub)} pubStatus elements")
    code = _pub_status(pub[0], aliases) if pub else "usable"  # the schema: "its value is usable by default"
    if code != "usable":
        return Status(left_out=f"newsml {code} item")
    embargoes = item.findall(f"{_N}itemMeta/{_N}embargoed")
    if len(embargoes) > 1:
        raise Unreadable(f"{len(embargoes)} embargoed elements")
    if embargoes and not (embargoes[0].text or "").strip():
        return Status(left_out="newsml item embargoed until further notice")
    return Status(embargo_until=(embargoes[0].text or "").strip() if embargoes else "")


def _pub_status(el: etree._Element, aliases: set[str]) -> str:
    qcode, uri = el.get("qcode"), el.get("uri")
    if uri is not None and qcode is None and uri.startswith(_PUB_STATUS_SCHEME):
        code = uri[len(_PUB_STATUS_SCHEME):]
    elif qcode is not None and uri is None and qcode.partition(":")[0] in aliases:
        code = qcode.partition(":")[2]
    else:
        shown = " ".join(f"{k}={v!r}" for k, v in (("qcode", qcode), ("uri", uri)) if v is not None)
        raise Unreadable(f"pubStatus {shown or '(no qcode or uri)'} is not in IPTC's publishing-status scheme")
    if code not in PUB_STATUSES:
        raise Unreadable(f"unknown pubStatus {qcode or uri!r} (known: {', '.join(PUB_STATUSES)})")
    return code


def _body(inline: etree._Element | None) -> etree._Element | None:
    """The article body inside inlineXML: an XHTML <body>, a NITF <body.content>, else the whole of it."""
    if inline is None:
        return None
    for el in inline.iter():
        if local(el) in ("body", "body.content"):
            return el
    return inline


def nitf(root: etree._Element, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """A NITF article: hedline, byline, dateline, body.content; published from date.issue or date.release,
    embargoed until date.release."""
    ns = etree.QName(root).namespace  # NITF 3.x has none; the XML schema versions have one

    def find(path: str) -> etree._Element | None:
        return root.find("/".join(f"{{{ns}}}{step}" if ns else step for step in path.split("/")))

    docdata = find("head/docdata")
    issue, release, doc_id = (find(f"head/docdata/{name}") for name in ("date.issue", "date.release", "doc-id"))
    ident = (doc_id.get("id-string") if doc_id is not None else None) or f"{Path(src).stem}-1"
    released = iso_time(release.get("norm") or release.text or "") if release is not None else ""
    if release is not None and not released:
        return [Problem(src, f"an empty date.release: article {ident!r} is not known to be releasable, left out", 1)]
    status = (docdata.get("management-status") if docdata is not None else None) or "usable"
    status = status.strip().lower()
    if status not in NITF_STATUSES:
        return [Problem(src, f"unknown docdata management-status {status!r} (known: {', '.join(NITF_STATUSES)}): "
                             f"article {ident!r} is not known to be usable, left out", 1)]
    if status in ("withheld", "canceled"):
        return [Skipped(f"nitf {status} article")]
    if status == "embargoed" and not released:
        return [Problem(src, f"management-status 'embargoed' with no date.release to lift it: article {ident!r} "
                             "left out", 1)]
    when = next((iso_time(d.get("norm") or d.text or "") for d in (issue, release) if d is not None), None)
    fields = {**meta, **present({
        "title": text_of(find("body/body.head/hedline/hl1")) or text_of(find("head/title")),
        "text": block_text(find("body/body.content")),
        "byline": text_of(find("body/body.head/byline")),
        "dateline": text_of(find("body/body.head/dateline")),
        "published": day(when),
        "embargo_until": released,
    })}
    doc = base.item_document(ident, fields, src, public, 1)
    return [base.held(doc, "nitf embargoed article") if status == "embargoed" else doc]
