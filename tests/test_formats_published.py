"""The formats on their own published test data, read from where the workplace keeps such files:

- WordPress's importer test exports (github WordPress/wordpress-importer, phpunit/data/) and IPTC's NewsML-G2
  examples (github iptc/newsml-g2, examples/), under `<repo>/../shared/fixtures/wordpress-importer/` and
  `.../newsml-g2/` (RAG_FORMAT_FIXTURES names another folder holding those two);
- feedparser's own test feeds, from its sdist, which setup downloads (RAG_FEEDPARSER_SDIST, else
  ~/.cache/newsroom-rag/fixtures/feedparser-*.tar.gz).

These files are not in this repository: a test whose file is missing is skipped, naming the path it looked
for. tests/test_formats_closed.py carries the same cases on small hand-made files everywhere.
"""

import os
import shutil
import tarfile
from pathlib import Path

import feedparser
import pytest
from lxml import etree

from rag.loaders import load_paths

REPO = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("RAG_FORMAT_FIXTURES") or REPO.parent / "shared" / "fixtures")
# scripts/setup.sh downloads the sdist of the feedparser version requirements/main.lock pins, hash-checked.
_SETUP_FIXTURES = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "newsroom-rag" / "fixtures"
_SETUP_SDIST = next(iter(sorted(_SETUP_FIXTURES.glob("feedparser-*.tar.gz"))), _SETUP_FIXTURES / "feedparser-*.tar.gz")
SDIST = Path(os.environ.get("RAG_FEEDPARSER_SDIST") or _SETUP_SDIST)
THEME = "https://wpthemetestdata.wordpress.com/?p="


def published(source: str, name: str) -> Path:
    path = FIXTURES / source / name
    if not path.is_file():
        # With the folder missing, one reason for every file of the source: pytest's summary counts them on one line.
        missing = path if path.parent.is_dir() else path.parent
        pytest.skip(f"{source}'s published test file not here: {missing} (or set RAG_FORMAT_FIXTURES)")
    return path


@pytest.fixture
def wordpress():
    return lambda name: published("wordpress-importer", name)


@pytest.fixture
def iptc():
    return lambda name: published("newsml-g2", name)


@pytest.fixture(scope="module")
def theme():
    path = published("wordpress-importer", "theme-unit-test-data.xml")
    return path, load_paths([path])


# WordPress: the Theme Unit Test export (WXR 1.2 under https://, 186 items).

def _posts(path, statuses):
    """(post_id, categories, tags, GMT day) of the export's posts in `statuses`, read with lxml alone."""
    wp = "https://wordpress.org/export/1.2/"
    for item in etree.parse(str(path)).getroot().iter("item"):
        if item.findtext(f"{{{wp}}}post_type") == "post" and item.findtext(f"{{{wp}}}status") in statuses:
            terms = [(c.get("domain"), c.text) for c in item.findall("category")]
            yield (item.findtext(f"{{{wp}}}post_id"), list(dict.fromkeys(t for d, t in terms if d == "category")),
                   list(dict.fromkeys(t for d, t in terms if d == "post_tag")),
                   item.findtext(f"{{{wp}}}post_date_gmt")[:10])


def test_the_theme_unit_test_export_gives_every_published_post_that_has_words_with_its_terms(theme):
    path, result = theme
    docs = {d.doc_id: d for d in result.documents}
    posts = list(_posts(path, ("publish",)))
    assert len(posts) == 56
    # Two published posts have no words: "Edge Case: No Content" is empty, and "Post Format: Image" is one
    # image with an empty alt text. Both are reported. One is password-protected, and left out. The other 53
    # are documents with their terms.
    empty = {p.line: p.message for p in result.problems}
    assert len(empty) == 2 and all("no article text" in m for m in empty.values())
    titles = [item.findtext("title") for item in etree.parse(str(path)).getroot().iter("item")]
    assert {titles[n - 1] for n in empty} == {"Edge Case: No Content", "Post Format: Image"}
    ingested = [post for post in posts if THEME + post[0] in docs]
    assert len(ingested) == 53 and THEME + "1168" not in docs  # 1168: 'Template: Password Protected ...'
    for post_id, cats, tags, day in ingested:
        meta = docs[THEME + post_id].metadata
        assert meta.get("categories", []) == cats and meta.get("tags", []) == tags, post_id
        assert meta["published"] == day, post_id
    # The authors' display names, not their logins (one post's dc:creator is written ">themereviewteam").
    bylines = {docs[THEME + post[0]].metadata["byline"] for post in ingested}
    assert bylines == {"Theme Buster", "Theme Reviewer", ">themereviewteam"}
    assert sum(bool(post[1]) for post in ingested) == 52  # "Keyboard navigation" has no category


def test_two_theme_posts_sharing_a_guid_are_both_ingested(theme):
    _, result = theme
    docs = {d.doc_id: d for d in result.documents}
    assert docs[THEME + "582"].title == "Post Format: Video (WordPress.tv)"
    assert docs[THEME + "1161"].title == "Post Format: Video (YouTube)"  # its guid is ?p=582 too
    assert not any("duplicate" in p.message for p in result.problems)


def test_the_theme_draft_pages_attachments_and_menu_items_are_left_out_and_counted(theme):
    _, result = theme
    assert result.skipped == {"wxr draft post": 1, "wxr page": 21, "wxr attachment": 37, "wxr nav_menu_item": 70,
                              "wxr password-protected post": 1}
    assert not any("Draft" == d.title for d in result.documents)


def test_the_theme_scheduled_post_is_held_until_its_date(theme):
    _, result = theme
    scheduled = {d.doc_id: d for d in result.documents}[THEME + "1153"]
    assert scheduled.title == "Scheduled" and scheduled.metadata["embargo_until"] == "2030-01-01T19:00:18Z"
    assert result.embargoed == {"wxr future post": 1}
    assert len(result.documents) == 54  # 53 published posts and the scheduled one: 186 items accounted for
    assert len(result.documents) + result.skipped_count + len(result.problems) == 186


def test_two_localhost_sites_exports_in_one_folder_give_two_documents(wordpress, tmp_path):
    for name in ("valid-wxr-1.1.xml", "slashes.xml"):
        shutil.copy(wordpress(name), tmp_path / name)
    result = load_paths([tmp_path])
    assert sorted(d.doc_id for d in result.documents) == ["slashes.xml::http://localhost/?p=1",
                                                        "valid-wxr-1.1.xml::http://localhost/?p=1"]
    assert result.problems == [] and result.skipped == {"wxr page": 1}


@pytest.mark.parametrize("name, documents, skipped, problems", [
    ("a11y-unit-test-data.xml", 43, {"wxr attachment": 39, "wxr draft post": 1, "wxr nav_menu_item": 50,
                                     "wxr page": 17, "wxr password-protected post": 1},
     3),  # a truncated item without type or status, and 2 empty posts
    ("small-export.xml", 5, {"wxr page": 5, "wxr private post": 1}, 0),
    ("valid-wxr-1.0.xml", 3, {"wxr page": 3}, 0),
    ("test-serialized-postmeta-with-cdata.xml", 0, {"wxr draft post": 1}, 0),
    ("wxr-flat-attachment-same-site.xml", 1, {"wxr attachment": 1}, 0),
    ("wxr-utf-8-challenges.xml", 1, {}, 0),
    ("crazy-cdata.xml", 0, {}, 1),  # not well-formed XML: "]]>" in content
    ("namespace-edge-cases.xml", 0, {}, 1),  # lxml refuses its non-ASCII namespace URI
    ("term-meta.xml", 0, {}, 0),  # terms, no items
])
def test_other_wordpress_importer_exports(wordpress, name, documents, skipped, problems):
    result = load_paths([wordpress(name)])
    assert (len(result.documents), result.skipped, len(result.problems)) == (documents, skipped, problems)


def test_an_a11y_item_without_type_or_status_is_a_problem_naming_it(wordpress):
    result = load_paths([wordpress("a11y-unit-test-data.xml")])
    (problem,) = [p for p in result.problems if "no wp:post_type" in p.message]
    assert problem.line == 3 and "'Page with comments'" in problem.message and "wp:post_id 156" in problem.message


# IPTC NewsML-G2 examples, and NITF as IPTC's examples carry it.

@pytest.mark.parametrize("name, doc_ids, skipped", [
    ("LISTING_2_NewsML-G2_Text_Document.xml", ["urn:newsml:acmenews.com:20161121:US-FINANCE-FED"], {}),
    ("LISTING_22_Sports_story_in_NewsML-G2NITF.xml", ["tag:xmlteam.com,2016:xt.5932656-preview"], {}),
    ("LISTING_3_Photo_in_NewsML-G2.xml", [], {"newsml ninat:picture item": 1}),
    ("LISTING_4_Multiple_Renditions_of_a_Video_in_NewsML-G2.xml", [], {"newsml ninat:video item": 1}),
    ("LISTING_6_Simple_NewsML-G2_Package.xml", [], {"newsml packageItem": 1}),
    ("LISTING_11_Person_Concept_conveyed_in_a_NewsML-G2_Concept_Item.xml", [], {"newsml conceptItem": 1}),
    ("LISTING_17_Planning_Item_a_CCL.xml", [], {"newsml planningItem": 1}),
])
def test_iptc_examples_give_their_text_news_items_and_count_the_other_items(iptc, name, doc_ids, skipped):
    result = load_paths([iptc(name)])
    assert [d.doc_id for d in result.documents] == doc_ids and result.skipped == skipped
    assert result.problems == []


def test_an_iptc_text_item_reads_headline_body_and_date(iptc):
    (doc,) = load_paths([iptc("LISTING_2_NewsML-G2_Text_Document.xml")]).documents
    assert doc.title and len(doc.text) > 200 and doc.metadata["published"].startswith("20")


def test_an_iptc_item_whose_body_the_example_leaves_out_is_reported(iptc):
    result = load_paths([iptc("LISTING_1_A_NewsML-G2_News_Item.xml")])  # embargoed 2018, body elided
    (problem,) = result.problems
    assert problem.line == 1 and "no article text" in problem.message


@pytest.mark.parametrize("name", ["LISTING_22_Sports_story_in_NewsML-G2NITF.xml",
                                  "LISTING_25_An_NITF_marked-up_article_conveyed_in_inlineXML.xml"])
def test_the_nitf_article_inside_an_iptc_example_reads_as_a_nitf_file(iptc, tmp_path, name):
    root = etree.parse(str(iptc(name))).getroot()
    nitf = next(el for el in root.iter() if etree.QName(el).localname == "nitf")
    (tmp_path / "story.xml").write_bytes(etree.tostring(nitf))
    result = load_paths([tmp_path / "story.xml"])
    (doc,) = result.documents
    assert doc.title.startswith("Arizona Diamondbacks") and doc.metadata["byline"] == "Sports Network"
    assert len(doc.text) > 200 and result.problems == []


# feedparser's own test feeds.

@pytest.fixture(scope="module")
def feedparser_tests(tmp_path_factory):
    if not SDIST.is_file():
        pytest.skip(f"feedparser's sdist not here: {SDIST} (run scripts/setup.sh, or set RAG_FEEDPARSER_SDIST)")
    out = tmp_path_factory.mktemp("feedparser")
    with tarfile.open(SDIST) as tar:
        wanted = [m for m in tar.getmembers() if m.isfile() and "/tests/wellformed/" in m.name]
        tar.extractall(out, members=wanted, filter="data")
    (wellformed,) = out.glob("*/tests/wellformed")
    return wellformed


# Files of the sample the loader refuses whole: not well-formed for lxml (a "--" in the test's header
# comment), and Atom's pre-0.3 draft namespaces.
REFUSED = {"atom10/entry_title_type_empty-no-crash.xml": "not well-formed XML",
           **{f"atom/atom_namespace_{n}.xml": "unrecognised XML" for n in (2, 3, 4, 5)}}


@pytest.mark.parametrize("folder, documents", [("rss", 20), ("atom10", 23), ("atom", 18)])
def test_every_entry_of_feedparsers_well_formed_feeds_is_a_document_or_a_problem(feedparser_tests, folder,
                                                                                   documents):
    """Each test feed checks one element; an entry whose element holds its text becomes a document with a
    title and text, one with no text is a problem naming the file and entry, and none is lost."""
    ingested = 0
    for path in sorted((feedparser_tests / folder).glob("*.xml")):
        result = load_paths([path])
        entries = len(feedparser.parse(path.read_bytes()).entries)
        refused = REFUSED.get(f"{folder}/{path.name}")
        if refused:
            (problem,) = result.problems
            assert refused in problem.message and result.documents == []
            continue
        assert all(p.line and p.source == str(path) for p in result.problems), path
        assert all("no article text" in p.message for p in result.problems), path
        assert len(result.documents) + len(result.problems) + result.skipped_count == entries, path
        assert all(d.title and d.text for d in result.documents), path
        ingested += len(result.documents)
    assert ingested == documents


@pytest.mark.parametrize("name, title, text", [
    ("rss/item_description.xml", "Example description", "Example description"),
    ("rss/item_content_encoded.xml", "Example content", "Example content"),
    ("rss/item_description_br.xml", "article title", "article title\n\narticle byline\n\ntext of article"),
    ("atom10/entry_content_base64.xml", "Example Atom", "Example Atom"),
    ("atom10/entry_content_text_plain_brackets.xml", "History of the tag", "History of the tag"),
    ("atom/entry_summary_inline_markup.xml", "Example Atom", "Example Atom"),
])
def test_feedparser_test_entries_with_text_read_as_a_newsroom_wants(feedparser_tests, name, title, text):
    (doc,) = load_paths([feedparser_tests / name]).documents
    assert (doc.title, doc.text) == (title, text)


def test_a_feedparser_test_entry_with_only_a_date_is_reported_not_ingested(feedparser_tests):
    result = load_paths([feedparser_tests / "rss" / "item_pubDate.xml"])
    (problem,) = result.problems
    assert result.documents == [] and problem.line == 1 and "no article text" in problem.message
