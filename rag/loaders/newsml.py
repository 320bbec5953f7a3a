"""Agency formats: IPTC NewsML-G2 (newsItem, or a newsMessage of them) and NITF (one article a file)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from lxml import etree

from . import base
from .base import Item
from .markup import NEWSML_NS, block_text, day, iso_time, local, present, text_of

_N = f"{{{NEWSML_NS}}}"


def newsml(root: etree._Element, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """Each newsItem: headline, byline, dateline, the inline body, first/version created, embargo."""
    items = [root] if local(root) == "newsItem" else list(root.iter(f"{_N}newsItem"))
    stem = Path(src).stem
    for number, item in enumerate(items, start=1):
        content = item.find(f"{_N}contentMeta")
        inline = item.find(f"{_N}contentSet/{_N}inlineXML")
        body = _body(inline)
        embargo = item.findtext(f"{_N}itemMeta/{_N}embargoed")
        fields = {**meta, **present({
            "title": text_of(content.find(f"{_N}headline")) if content is not None else "",
            "text": block_text(body),
            "byline": text_of(content.find(f"{_N}by")) if content is not None else "",
            "dateline": text_of(content.find(f"{_N}dateline")) if content is not None else "",
            "published": day(item.findtext(f"{_N}itemMeta/{_N}firstCreated")
                             or item.findtext(f"{_N}itemMeta/{_N}versionCreated")),
            "embargo_until": (embargo or "").strip(),
        })}
        yield base.item_document(item.get("guid") or f"{stem}-{number}", fields, src, public, number)


def _body(inline: etree._Element | None) -> etree._Element | None:
    """The article body inside inlineXML: an XHTML <body>, a NITF <body.content>, else the whole of it."""
    if inline is None:
        return None
    for el in inline.iter():
        if local(el) in ("body", "body.content"):
            return el
    return inline


def nitf(root: etree._Element, src: str, meta: Mapping[str, Any], public: str) -> Iterable[Item]:
    """A NITF article: hedline, byline, dateline, body.content; published from date.issue or date.release."""
    ns = etree.QName(root).namespace  # NITF 3.x has none; the XML schema versions have one

    def find(path: str) -> etree._Element | None:
        return root.find("/".join(f"{{{ns}}}{step}" if ns else step for step in path.split("/")))

    issue, release, doc_id = (find(f"head/docdata/{name}") for name in ("date.issue", "date.release", "doc-id"))
    when = next((iso_time(d.get("norm") or d.text or "") for d in (issue, release) if d is not None), None)
    fields = {**meta, **present({
        "title": text_of(find("body/body.head/hedline/hl1")) or text_of(find("head/title")),
        "text": block_text(find("body/body.content")),
        "byline": text_of(find("body/body.head/byline")),
        "dateline": text_of(find("body/body.head/dateline")),
        "published": day(when),
    })}
    ident = doc_id.get("id-string") if doc_id is not None else None
    return [base.item_document(ident or f"{Path(src).stem}-1", fields, src, public, 1)]
