"""Every format reads fail-closed, on small hand-made fixtures that reproduce what real exports do
(tests/fixtures/formats/wxr-sites, wxr-localhost, closed): an item is published only when its format says so
in words the loader knows; a known unpublished one is counted by type and status; an unknown or unreadable
status leaves it out as a problem naming the file, the item and the value; a scheduled item is held under
embargo until its time; ids do not collide across sites."""

from pathlib import Path

import pytest

from rag.ingest import IngestReport
from rag.loaders import load_paths
from rag.records import Access

FIXTURES = Path(__file__).parent / "fixtures" / "formats"
HARBOUR = FIXTURES / "wxr-sites" / "harbour.xml"
CLOSED = FIXTURES / "closed"


def _load(*paths):
    result = load_paths(list(paths))
    return result, {d.doc_id: d for d in result.documents}


def _problems(result):
    """{item number: message} of one file's problems."""
    return {p.line: p.message for p in result.problems}


def _copy(tmp_path, source, name=None, **replace):
    text = source.read_text(encoding="utf-8")
    for old, new in replace.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / (name or source.name)
    path.write_text(text, encoding="utf-8")
    return path


# WordPress WXR.

def test_an_https_wxr_1_2_export_gives_its_published_posts_with_terms_author_dates_and_excerpt():
    _, docs = _load(HARBOUR)
    post = docs["https://harbour.example/?p=11"]
    assert post.title == "Ferry timetable changes from June"
    assert post.text == "The island ferry will run every forty minutes from 1 June, the operator said."
    assert post.metadata == {
        "url": "https://harbour.example/2024/05/ferry-timetable/", "excerpt": "More sailings from June.",
        "published": "2024-05-03",  # post_date_gmt; the site-local post_date is already 4 May
        "byline": "Ana Lopes",  # the display name of the author's login
        "categories": ["Transport"], "tags": ["ferries", "timetables"],  # not the post format
        "source": "wxr-sites/harbour.xml:1"}


def test_what_is_not_a_published_post_is_left_out_and_counted_by_type_and_status():
    result, docs = _load(HARBOUR)
    assert result.skipped == {"wxr draft post": 1, "wxr page": 1, "wxr attachment": 1, "wxr nav_menu_item": 1,
                              "wxr password-protected post": 1}
    assert sorted(docs) == ["https://harbour.example/?p=11", "https://harbour.example/?p=13",
                            "https://harbour.example/?p=19", "https://harbour.example/?p=20",
                            "https://harbour.example/?p=22"]


@pytest.mark.parametrize("number, words", [
    (7, ["unknown wp:status 'legal-review'", "'Awaiting legal review'", "wp:post_id 17", "left out"]),
    (8, ["no wp:status", "'No status at all'", "left out"]),
    (11, ["no article text"]),  # an empty post is reported, not ingested
    (13, ["scheduled post", "no wp:post_date_gmt or wp:post_date", "wp:post_id 23"]),
])
def test_a_post_whose_status_is_unknown_missing_or_undated_is_a_problem_naming_file_and_item(number, words):
    result, _ = _load(HARBOUR)
    assert sorted(_problems(result)) == [7, 8, 11, 13]
    assert all(p.source == str(HARBOUR) for p in result.problems)
    message = _problems(result)[number]
    assert all(w in message for w in words), message


def test_a_scheduled_post_is_held_under_embargo_until_its_gmt_time():
    result, docs = _load(HARBOUR)
    scheduled = docs["https://harbour.example/?p=13"].metadata
    assert scheduled["embargo_until"] == "2031-03-01T08:00:00Z"  # post_date_gmt, not the local 09:00
    assert result.embargoed == {"wxr future post": 2}
    public = frozenset()
    assert Access(public, "2031-03-01T07:59:59Z").denial(scheduled) == "embargo"
    assert Access(public, "2031-03-01T08:00:00Z").denial(scheduled) is None


def test_a_scheduled_post_with_only_a_local_time_is_held_until_the_latest_instant_it_can_mean():
    _, docs = _load(HARBOUR)
    # post_date 2031-03-02 09:00 in an unknown zone: at UTC-12 that is 21:00 UTC, the latest it can be.
    assert docs["https://harbour.example/?p=22"].metadata["embargo_until"] == "2031-03-02T21:00:00Z"


def test_a_later_embargo_in_post_meta_wins_over_the_schedule(tmp_path):
    meta = ("<wp:postmeta><wp:meta_key>embargo_until</wp:meta_key>"
            "<wp:meta_value>2031-03-05T00:00:00Z</wp:meta_value></wp:postmeta>")
    f = _copy(tmp_path, HARBOUR, **{"<wp:status><![CDATA[future]]></wp:status>\n    <wp:post_type><![CDATA[post]]>"
                                    "</wp:post_type>\n  </item>\n  <item>\n    <title>About":
                                    "<wp:status><![CDATA[future]]></wp:status>\n    <wp:post_type><![CDATA[post]]>"
                                    f"</wp:post_type>{meta}\n  </item>\n  <item>\n    <title>About"})
    _, docs = _load(f)
    assert docs["https://harbour.example/?p=13"].metadata["embargo_until"] == "2031-03-05T00:00:00Z"


def test_two_posts_of_one_export_sharing_a_guid_are_two_documents():
    result, docs = _load(HARBOUR)
    assert docs["https://harbour.example/?p=19"].title == "Regatta results: the dinghies"
    assert docs["https://harbour.example/?p=20"].title == "Regatta results: the yachts"
    assert not any("duplicate" in p.message for p in result.problems)


def test_two_sites_exports_in_one_folder_both_ingest_the_post_they_share_a_guid_for():
    result, docs = _load(FIXTURES / "wxr-sites")
    assert {"https://harbour.example/?p=11", "https://gazette.example/?p=7"} <= set(docs)
    assert docs["https://gazette.example/?p=7"].metadata["categories"] == ["Partners"]
    assert not any("duplicate" in p.message for p in result.problems)


def test_two_localhost_sites_in_one_folder_both_ingest_under_their_file_names():
    result, docs = _load(FIXTURES / "wxr-localhost")
    assert sorted(docs) == ["datasets.xml::http://localhost/?p=1", "trunk.xml::http://localhost/?p=1"]
    assert result.problems == []
    datasets = docs["datasets.xml::http://localhost/?p=1"].metadata  # WXR 1.0's terms
    assert datasets["categories"] == ["Uncategorized"] and datasets["tags"] == ["news"]


def test_a_re_read_export_keeps_its_ids():
    first = [d.doc_id for d in load_paths([FIXTURES / "wxr-sites", FIXTURES / "wxr-localhost"]).documents]
    again = [d.doc_id for d in load_paths([FIXTURES / "wxr-sites", FIXTURES / "wxr-localhost"]).documents]
    assert first == again and len(set(first)) == len(first) == 8


@pytest.mark.parametrize("ident, site, expected", [
    ("https://wire.example/briefs/1", None, "https://wire.example/briefs/1"),  # a public URL names one thing
    ("urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a", None, "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a"),
    ("tag:wire.example,2024:brief-1", None, "tag:wire.example,2024:brief-1"),
    ("1001", "https://wire.example", "https://wire.example::1001"),  # a bare guid: qualified by its site
    ("1001", None, "export.xml::1001"),
    ("http://localhost/?p=1", "http://localhost", "export.xml::http://localhost/?p=1"),  # every dev site's URL
    ("http://127.0.0.1/?p=1", "https://wire.example", "https://wire.example::http://127.0.0.1/?p=1"),
    ("http://intranet/?p=1", "http://intranet", "export.xml::http://intranet/?p=1"),
    ("http://news.internal/?p=1", "http://news.internal", "export.xml::http://news.internal/?p=1"),
])
def test_an_item_id_is_kept_when_it_names_one_thing_the_world_over_else_qualified(ident, site, expected):
    from rag.loaders.markup import scoped_id

    assert scoped_id(ident, site, "export.xml") == expected


@pytest.mark.parametrize("namespace", [
    "http://wordpress.org/export/1.0/", "http://wordpress.org/export/1.1/", "http://wordpress.org/export/1.2/",
    "https://wordpress.org/export/1.1/", "https://wordpress.org/export/1.3/",
])
def test_every_wxr_namespace_wordpress_writes_reads_the_same(tmp_path, namespace):
    f = _copy(tmp_path, HARBOUR, **{'xmlns:wp="https://wordpress.org/export/1.2/"': f'xmlns:wp="{namespace}"',
                                    "https://wordpress.org/export/1.2/excerpt/": f"{namespace}excerpt/"})
    def read(path):
        result = load_paths([path])
        docs = [(d.doc_id, d.title, d.text, {k: v for k, v in d.metadata.items() if k != "source"})
                for d in result.documents]
        return docs, result.skipped, result.embargoed, [(p.line, p.message) for p in result.problems]

    assert read(f) == read(HARBOUR)


def test_an_export_in_a_wordpress_namespace_of_another_form_is_not_read_as_a_feed(tmp_path):
    f = _copy(tmp_path, HARBOUR, **{'xmlns:wp="https://wordpress.org/export/1.2/"':
                                    'xmlns:wp="https://wordpress.org/export/2/"'})
    result, docs = _load(f)
    assert docs == {}  # not one item published as a plain RSS entry, drafts and pages included
    (problem,) = result.problems
    assert "https://wordpress.org/export/2/" in problem.message and "none of its items" in problem.message


@pytest.mark.parametrize("replace, words", [
    ({"<wp:status><![CDATA[publish]]></wp:status>\n    <wp:post_type><![CDATA[post]]></wp:post_type>\n"
      "    <category domain=\"category\" nicename=\"transport\">":
      "<wp:status>publish</wp:status><wp:status>draft</wp:status>\n    <wp:post_type><![CDATA[post]]></wp:post_type>\n"
      "    <category domain=\"category\" nicename=\"transport\">"}, ["2 different wp:status values", "'draft'"]),
    ({"<wp:status><![CDATA[publish]]></wp:status>\n    <wp:post_type><![CDATA[post]]></wp:post_type>\n"
      "    <category domain=\"category\" nicename=\"transport\">":
      "<wp:status></wp:status>\n    <wp:post_type><![CDATA[post]]></wp:post_type>\n"
      "    <category domain=\"category\" nicename=\"transport\">"}, ["empty wp:status"]),
    ({"<wp:post_type><![CDATA[post]]></wp:post_type>\n    <category domain=\"category\" nicename=\"transport\">":
      "<category domain=\"category\" nicename=\"transport\">"}, ["no wp:post_type"]),
    ({"<category domain=\"post_format\"": "<wp:postmeta><wp:meta_key>desks</wp:meta_key><wp:meta_value>metro"
      "</wp:meta_value></wp:postmeta><wp:postmeta><wp:meta_key>desks</wp:meta_key><wp:meta_value>sport"
      "</wp:meta_value></wp:postmeta><category domain=\"post_format\""},
     ["2 different values of the post meta 'desks'", "'metro'", "'sport'"]),
])
def test_a_wxr_field_that_cannot_be_read_leaves_the_post_out_naming_it(tmp_path, replace, words):
    result, docs = _load(_copy(tmp_path, HARBOUR, **replace))
    assert "https://harbour.example/?p=11" not in docs
    message = _problems(result)[1]
    assert all(w in message for w in words), message


def test_the_ingest_summary_counts_what_was_left_out_by_type_and_status_and_what_is_held():
    loaded = load_paths([FIXTURES / "wxr-sites"])
    summary = IngestReport(left_out=dict(loaded.skipped), embargoed=dict(loaded.embargoed)).summary()
    assert ("5 items left out (1 wxr attachment, 1 wxr draft post, 1 wxr nav_menu_item, 1 wxr page, "
            "1 wxr password-protected post)") in summary
    assert "2 held under embargo (2 wxr future post)" in summary


# RSS and Atom.

def test_an_atom_draft_is_left_out_and_an_unknown_draft_value_is_never_published():
    result, docs = _load(CLOSED / "drafts.atom")
    assert sorted(docs) == ["urn:uuid:5b0c4a2e-0d4b-4a53-9d51-6f1f6c0f0a11",
                            "urn:uuid:5b0c4a2e-0d4b-4a53-9d51-6f1f6c0f0a13"]
    assert result.skipped == {"atom draft entry": 1}
    message = _problems(result)[4]
    assert "unknown app:draft value 'pending'" in message and "'Stadium deal, unclear status'" in message


def test_an_rss_item_with_an_unknown_draft_value_is_never_published_and_a_short_guid_is_qualified():
    result, docs = _load(CLOSED / "drafts.rss")
    assert list(docs) == ["https://wire.example::1001"]  # a bare guid, qualified by the channel's link
    assert docs["https://wire.example::1001"].metadata["published"] == "2024-05-06"
    assert result.skipped == {"rss draft item": 1}
    assert "unknown app:draft value 'perhaps'" in _problems(result)[3]


# NewsML-G2.

def test_newsml_items_are_read_by_their_publishing_status_and_embargo():
    f = CLOSED / "newsml-status.xml"
    result, docs = _load(f)
    assert sorted(docs) == ["urn:newsml:agency.example:20240509:by-uri",
                            "urn:newsml:agency.example:20240509:usable-embargoed"]
    held = docs["urn:newsml:agency.example:20240509:usable-embargoed"]
    assert held.metadata["embargo_until"] == "2031-06-01T04:00:00Z"
    assert result.embargoed == {"newsml embargoed item": 1}
    assert result.skipped == {"newsml withheld item": 1, "newsml canceled item": 1, "newsml ninat:picture item": 1,
                              "newsml item embargoed until further notice": 1}
    problems = _problems(result)
    assert sorted(problems) == [4, 5, 7]
    assert "unknown pubStatus 'stat:pending'" in problems[4]
    assert "qcode='wfs:usable'" in problems[5] and "publishing-status scheme" in problems[5]
    assert "'embargo_until'" in problems[7] and "'after the vote'" in problems[7]


# NITF.

@pytest.mark.parametrize("name, doc_ids, skipped, words", [
    ("nitf-pending.xml", [], {}, ["unknown docdata management-status 'pending'", "'nitf-pending'"]),
    ("nitf-embargoed-undated.xml", [], {}, ["'embargoed' with no date.release"]),
    ("nitf-bad-release.xml", [], {}, ["'embargo_until'", "'next week'"]),
    ("nitf-withheld.xml", [], {"nitf withheld article": 1}, []),
    ("nitf-embargoed.xml", ["nitf-embargoed"], {}, []),
])
def test_a_nitf_article_is_read_by_its_management_status_and_release_date(name, doc_ids, skipped, words):
    result, docs = _load(CLOSED / name)
    assert list(docs) == doc_ids and result.skipped == skipped
    if words:
        (problem,) = result.problems
        assert problem.source == str(CLOSED / name) and all(w in problem.message for w in words), problem.message
    else:
        assert result.problems == []


def test_an_embargoed_nitf_article_is_held_until_its_release():
    result, docs = _load(CLOSED / "nitf-embargoed.xml")
    assert docs["nitf-embargoed"].metadata["embargo_until"] == "2031-06-01T04:00:00Z"
    assert result.embargoed == {"nitf embargoed article": 1}


# Front matter.

@pytest.mark.parametrize("name, skipped, words", [
    ("draft.md", {"front matter draft": 1}, []),
    ("unpublished.md", {"front matter unpublished": 1}, []),
    ("draft-unclear.md", {}, ["'draft'", "'maybe'"]),
    ("status-pending.md", {}, ["'status'", "'pending'"]),
    ("embargo-unreadable.md", {}, ["'embargo_until'", "'after the polls close'"]),
])
def test_front_matter_that_says_unpublished_or_cannot_be_read_leaves_the_page_out(name, skipped, words):
    result, docs = _load(CLOSED / name)
    assert docs == {} and result.skipped == skipped
    if words:
        (problem,) = result.problems
        assert problem.source == str(CLOSED / name) and all(w in problem.message for w in words), problem.message
    else:
        assert result.problems == []


def test_jekylls_published_true_is_not_a_date(tmp_path):
    (tmp_path / "a.md").write_text("---\ntitle: A\npublished: true\n---\nBody of a.\n", encoding="utf-8")
    (doc,) = load_paths([tmp_path / "a.md"]).documents
    assert "published" not in doc.metadata
