"""The article formats beyond plain files (RSS, Atom, WordPress WXR, NewsML-G2, NITF) and the rule fields
(embargo_until, desks, status, correction) every format may carry, read and validated at load time."""

import json
import shutil
from pathlib import Path

import pytest

from rag.loaders import load_paths

FIXTURES = Path(__file__).parent / "fixtures" / "formats"


def _load(path):
    result = load_paths([path])
    return result, {d.doc_id: d for d in result.documents}


def test_wordpress_export_reads_published_posts_only_and_counts_the_rest():
    result, docs = _load(FIXTURES / "wordpress.xml")
    assert list(docs) == ["https://gazette.example/?p=101", "https://gazette.example/?p=104"]
    post = docs["https://gazette.example/?p=101"]
    assert post.title == "Council approves new ferry terminal"
    assert post.text == ("The city council voted 7 to 2 on Tuesday to approve a new ferry terminal.\n\n"
                         "Construction is due to start in September.")  # HTML cleaned, script dropped
    assert post.metadata == {"url": "https://gazette.example/2024/05/ferry-terminal/", "published": "2024-05-01",
                             "byline": "Ana Lopes", "categories": ["Local"], "tags": ["ferries", "council"],
                             "desks": ["metro", "politics"], "source": "formats/wordpress.xml:1"}
    corrected = docs["https://gazette.example/?p=104"].metadata
    assert corrected["status"] == "corrected" and "July" in corrected["correction"]
    assert result.skipped == {"wxr draft post": 1, "wxr private post": 1, "wxr page": 1}
    assert result.skipped_count == 3 and result.problems == []


@pytest.mark.parametrize("name, doc_id, title, meta", [
    ("feed.rss", "https://wire.example/briefs/1001", "Bridge reopens after repairs",
     {"url": "https://wire.example/briefs/bridge-reopens", "published": "2024-05-06", "byline": "Wire staff"}),
    ("rss2-feed.xml", "https://sport.example/cup-final", "United win the cup final",
     {"url": "https://sport.example/cup-final", "published": "2024-05-11"}),
    ("feed.atom", "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", "Telescope finds a cold exoplanet",
     {"url": "https://science.example/2024/cold-exoplanet", "published": "2024-05-08", "byline": "Mira Chen"}),
    ("newsml.xml", "urn:newsml:agency.example:20240509:nm-2001", "Central bank holds rates steady",
     {"byline": "By Jonas Berg", "dateline": "FRANKFURT, May 9", "published": "2024-05-09",
      "embargo_until": "2024-05-10T04:00:00Z"}),
    ("nitf.xml", "nitf-3001", "Museum returns stolen painting to its owners",
     {"byline": "By Clara Weiss", "dateline": "VIENNA, May 10", "published": "2024-05-10"}),
])
def test_each_format_ingests_its_fixture(name, doc_id, title, meta):
    result, docs = _load(FIXTURES / name)
    assert result.problems == []
    doc = docs[doc_id]
    assert doc.title == title
    assert meta.items() <= doc.metadata.items()
    assert doc.metadata["source"] == f"formats/{name}:1" and doc.source.endswith(f"{name}:1")
    assert "<" not in doc.text and len(doc.text) > 40


def test_nitf_in_its_schema_namespace_reads_the_same(tmp_path):
    text = (FIXTURES / "nitf.xml").read_text(encoding="utf-8").replace(
        '<nitf version="-//IPTC//DTD NITF 3.6//EN">', '<nitf xmlns="http://iptc.org/std/NITF/2006-10-18/">')
    (tmp_path / "nitf.xml").write_text(text, encoding="utf-8")
    plain, spaced = load_paths([FIXTURES / "nitf.xml"]).documents, load_paths([tmp_path / "nitf.xml"]).documents
    assert [(d.doc_id, d.title, d.text) for d in plain] == [(d.doc_id, d.title, d.text) for d in spaced]


def test_the_atom_entry_prefers_content_to_summary():
    _, docs = _load(FIXTURES / "feed.atom")
    (doc,) = docs.values()
    assert doc.text == "Astronomers said the planet orbits its star every 400 days.\n\nIt is colder than Mars."


def test_a_folder_of_every_format_loads_together(tmp_path):
    for f in FIXTURES.glob("*.*"):  # not the subfolders of fail-closed cases (tests/test_formats_closed.py)
        shutil.copy(f, tmp_path / f.name)
    result, docs = _load(tmp_path)
    assert len(docs) == 8 and result.problems == [] and result.unsupported == {}


# Generated files of 1,000 items, one template per format.

def _wxr(items):
    return ('<?xml version="1.0"?><rss version="2.0" xmlns:content="http://purl.org/rss/1.0/modules/content/" '
            'xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:wp="http://wordpress.org/export/1.2/"><channel>'
            + "".join(f"<item><title>Post {i}</title><link>https://x.example/{i}</link>"
                      f"<guid>https://x.example/?p={i}</guid><dc:creator>Ed</dc:creator>"
                      f"<content:encoded><![CDATA[{body}]]></content:encoded>"
                      "<wp:status>publish</wp:status><wp:post_type>post</wp:post_type></item>"
                      for i, body in items)
            + "</channel></rss>")


def _rss(items):
    return ('<?xml version="1.0"?><rss version="2.0"><channel><title>T</title><link>https://x.example</link>'
            + "".join(f"<item><title>Brief {i}</title><guid>https://x.example/b/{i}</guid>"
                      f"<pubDate>Mon, 06 May 2024 07:15:00 GMT</pubDate><description><![CDATA[{body}]]>"
                      "</description></item>" for i, body in items)
            + "</channel></rss>")


def _atom(items):
    return ('<?xml version="1.0"?><feed xmlns="http://www.w3.org/2005/Atom"><title>T</title><id>urn:f</id>'
            "<updated>2024-05-08T12:00:00Z</updated>"
            + "".join(f'<entry><title>Entry {i}</title><id>urn:e:{i}</id><updated>2024-05-08T12:00:00Z</updated>'
                      f'<content type="html"><![CDATA[{body}]]></content></entry>' for i, body in items)
            + "</feed>")


def _newsml(items):
    return ('<?xml version="1.0"?><newsMessage xmlns="http://iptc.org/std/nar/2006-10-01/"><itemSet>'
            + "".join(f'<newsItem guid="urn:n:{i}"><itemMeta><firstCreated>2024-05-09T08:00:00Z</firstCreated>'
                      f"</itemMeta><contentMeta><headline>Item {i}</headline></contentMeta><contentSet>"
                      f'<inlineXML><html xmlns="http://www.w3.org/1999/xhtml"><body>{body}</body></html>'
                      "</inlineXML></contentSet></newsItem>" for i, body in items)
            + "</itemSet></newsMessage>")


MANY = {"wxr.xml": _wxr, "feed.rss": _rss, "feed.atom": _atom, "newsml.xml": _newsml}


@pytest.mark.parametrize("name", sorted(MANY))
def test_a_thousand_item_file_loads_a_thousand_documents(tmp_path, name):
    f = tmp_path / name
    f.write_text(MANY[name]([(i, f"<p>Article number {i} has a body.</p>") for i in range(1, 1001)]),
                 encoding="utf-8")
    result = load_paths([f])
    assert len(result.documents) == 1000 and result.problems == []
    assert len({d.doc_id for d in result.documents}) == 1000


def test_a_thousand_nitf_files_load_a_thousand_documents(tmp_path):
    template = (FIXTURES / "nitf.xml").read_text(encoding="utf-8")
    for i in range(1000):
        (tmp_path / f"story-{i}.xml").write_text(template.replace("nitf-3001", f"nitf-{i}"), encoding="utf-8")
    result = load_paths([tmp_path])
    assert len(result.documents) == 1000 and result.problems == []


@pytest.mark.parametrize("name", sorted(MANY))
def test_a_malformed_item_is_reported_by_number_and_the_rest_kept(tmp_path, name):
    f = tmp_path / name
    f.write_text(MANY[name]([(1, "<p>First body.</p>"), (2, "<p> </p>"), (3, "<p>Third body.</p>")]),
                 encoding="utf-8")
    result = load_paths([f])
    assert len(result.documents) == 2
    (problem,) = result.problems
    assert problem.source == str(f) and problem.line == 2 and f"{name}:2" in str(problem)


@pytest.mark.parametrize("name", ["broken.xml", "broken.rss", "broken.atom"])
def test_a_file_that_is_not_well_formed_xml_is_one_problem(tmp_path, name):
    (tmp_path / name).write_text("<rss><channel><item><title>Unclosed</channel></rss>", encoding="utf-8")
    (tmp_path / "good.txt").write_text("A good article.", encoding="utf-8")
    result = load_paths([tmp_path])
    assert [d.doc_id for d in result.documents] == ["good"]
    (problem,) = result.problems
    assert problem.source.endswith(name) and "not well-formed XML" in problem.message


def test_an_unknown_xml_root_is_reported(tmp_path):
    (tmp_path / "sitemap.xml").write_text('<urlset><url><loc>https://x</loc></url></urlset>', encoding="utf-8")
    (problem,) = load_paths([tmp_path]).problems
    assert "sitemap.xml" in str(problem) and "<urlset>" in problem.message


# Rule fields.

def _jsonl(tmp_path, *rows):
    f = tmp_path / "wire.jsonl"
    f.write_text("\n".join(json.dumps({"text": "Body.", **r}) for r in rows), encoding="utf-8")
    return f


def test_rule_fields_are_read_and_normalised_from_jsonl(tmp_path):
    result = load_paths([_jsonl(tmp_path,
                                {"id": "a", "embargo_until": "2030-01-01T09:00:00+01:00", "desks": "metro, sport",
                                 "status": "Corrected", "correction": "Fixed a name."},
                                {"id": "b", "desks": ["politics"], "status": "retracted"})])
    a, b = result.documents
    assert a.metadata["embargo_until"] == "2030-01-01T08:00:00Z"
    assert a.metadata["desks"] == ["metro", "sport"] and a.metadata["status"] == "corrected"
    assert a.metadata["correction"] == "Fixed a name."
    assert b.metadata["desks"] == ["politics"] and b.metadata["status"] == "retracted"


def test_a_document_without_rule_fields_gets_no_rule_keys(tmp_path):
    (doc,) = load_paths([_jsonl(tmp_path, {"id": "plain", "title": "T"})]).documents
    assert doc.metadata == {"source": f"{tmp_path.name}/wire.jsonl:1"}


@pytest.mark.parametrize("field, value", [
    ("embargo_until", "2030-01-01T09:00:00"),  # no zone
    ("embargo_until", "next tuesday"),
    ("embargo_until", "2030-01-01"),
    ("status", "draft"),
    ("desks", 42),
    ("desks", ["metro", 7]),
    ("desks", " , "),
    ("correction", ["not", "text"]),
])
def test_a_bad_rule_value_is_rejected_naming_file_item_field_and_value(tmp_path, field, value):
    f = _jsonl(tmp_path, {"id": "ok"}, {"id": "bad", field: value}, {"id": "ok2"})
    result = load_paths([f])
    assert [d.doc_id for d in result.documents] == ["ok", "ok2"]
    (problem,) = result.problems
    assert problem.source == str(f) and problem.line == 2
    assert repr(field) in problem.message and repr(value) in problem.message


def test_rule_fields_from_markdown_front_matter_and_articles_toml(tmp_path):
    (tmp_path / "a.md").write_text("---\nembargo_until: 2030-05-01T06:00:00Z\ndesks: [metro]\n---\n# A\n\nBody.\n",
                                   encoding="utf-8")
    (tmp_path / "b.txt").write_text("Body of b.", encoding="utf-8")
    (tmp_path / "c.txt").write_text("Body of c.", encoding="utf-8")
    (tmp_path / "articles.toml").write_text(
        '["b.txt"]\nembargo_until = 2030-05-01T08:00:00+02:00\nstatus = "corrected"\ncorrection = "Typo."\n'
        '["c.txt"]\nembargo_until = 2030-05-01T08:00:00\n', encoding="utf-8")
    result, docs = _load(tmp_path)
    assert docs["a"].metadata["embargo_until"] == "2030-05-01T06:00:00Z" and docs["a"].metadata["desks"] == ["metro"]
    assert docs["b"].metadata["embargo_until"] == "2030-05-01T06:00:00Z"
    assert docs["b"].metadata["status"] == "corrected" and docs["b"].metadata["correction"] == "Typo."
    assert "c" not in docs
    (problem,) = result.problems
    assert problem.source.endswith("c.txt") and "'embargo_until'" in problem.message


def test_a_bad_rule_value_in_an_xml_item_is_rejected_by_item(tmp_path):
    text = (FIXTURES / "wordpress.xml").read_text(encoding="utf-8").replace(
        "<![CDATA[corrected]]>", "<![CDATA[withdrawn]]>")
    (tmp_path / "wp.xml").write_text(text, encoding="utf-8")
    result = load_paths([tmp_path / "wp.xml"])
    assert [d.doc_id for d in result.documents] == ["https://gazette.example/?p=101"]
    (problem,) = result.problems
    assert problem.line == 5 and "'status'" in problem.message and "'withdrawn'" in problem.message


def test_a_bad_newsml_embargo_is_rejected(tmp_path):
    shutil.copy(FIXTURES / "newsml.xml", tmp_path / "n.xml")
    f = tmp_path / "n.xml"
    f.write_text(f.read_text(encoding="utf-8").replace("2024-05-10T06:00:00+02:00", "2024-05-10T06:00:00"),
                 encoding="utf-8")
    result = load_paths([f])
    assert result.documents == [] and "'embargo_until'" in str(result.problems[0])


def test_the_ingest_summary_counts_the_items_left_out():
    from rag.ingest import IngestReport

    report = IngestReport(left_out=dict(load_paths([FIXTURES / "wordpress.xml"]).skipped))
    assert "3 items left out (1 wxr draft post, 1 wxr page, 1 wxr private post)" in report.summary()
