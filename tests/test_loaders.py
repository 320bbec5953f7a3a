import json

import pytest

from rag.errors import LoadError
from rag.loaders import load_paths


def test_corpus_loads_with_sidecar_metadata(corpus_docs):
    by_id = {d.doc_id: d for d in corpus_docs}
    meduza = by_id["000_c072f841d33a32ed"]
    assert meduza.metadata["publisher"] == "Meduza"
    assert "Denis Dmitriev" in meduza.metadata["byline"]
    assert "published" not in meduza.metadata  # the article states no date; none is invented
    assert by_id["001_557b18325e1c198b"].title.startswith("Putin and Clinton discussed options")


def test_jsonl_one_article_per_line_with_extra_fields_kept(tmp_path):
    f = tmp_path / "feed.jsonl"
    rows = [
        {"id": "a1", "title": "One", "text": "First body.", "url": "https://x/1", "published": "2020-01-02",
         "section": "World"},
        {"title": "No id", "text": "Second body."},
    ]
    f.write_text("\n".join(json.dumps(r) for r in rows), encoding="utf-8")
    docs = load_paths([f]).documents
    assert [d.doc_id for d in docs] == ["a1", "feed-2"]
    assert docs[0].metadata["section"] == "World" and docs[0].metadata["published"] == "2020-01-02"
    assert docs[0].metadata["url"] == "https://x/1" and docs[0].title == "One"


def test_bad_inputs_are_reported_by_file_and_line_and_do_not_stop_others(tmp_path):
    (tmp_path / "good.txt").write_text("A good article.\n\nIt has a body.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("   \n", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    (tmp_path / "latin1.txt").write_bytes("Koštunica".encode("cp1250"))
    (tmp_path / "feed.jsonl").write_text(
        '{"id": "ok", "text": "Fine."}\n{not json}\n{"id": "nt", "title": "no text"}\n[1, 2]\n', encoding="utf-8"
    )
    result = load_paths([tmp_path])
    assert sorted(d.doc_id for d in result.documents) == ["good", "ok"]
    messages = [str(p) for p in result.problems]
    assert any("empty.txt" in m and "empty file" in m for m in messages)
    assert any("binary.txt" in m and "binary" in m for m in messages)
    assert any("latin1.txt" in m and "not UTF-8" in m for m in messages)
    assert any("feed.jsonl:2" in m and "not valid JSON" in m for m in messages)
    assert any("feed.jsonl:3" in m and "'text'" in m for m in messages)
    assert any("feed.jsonl:4" in m and "JSON object" in m for m in messages)


def test_missing_path_is_an_error_naming_it(tmp_path):
    with pytest.raises(LoadError, match="no-such-dir"):
        load_paths([tmp_path / "no-such-dir"])


def test_html_extracts_the_article_not_the_chrome(tmp_path):
    body = " ".join(["Koštunica got 48.96 percent of the vote in the first round, officials said."] * 3)
    html = f"""<html><head><title>Election result</title></head><body>
    <nav><a href="/">Home</a> <a href="/world">World</a> <a href="/sport">Sport</a></nav>
    <article><h1>Election result</h1><p>{body}</p><p>The runoff was set for October 8.</p></article>
    <footer>Copyright Example News. All rights reserved. Privacy policy.</footer>
    <script>var tracking = 1;</script></body></html>"""
    (tmp_path / "page.html").write_text(html, encoding="utf-8")
    [doc] = load_paths([tmp_path / "page.html"]).documents
    assert "48.96" in doc.text and "October 8" in doc.text
    assert "tracking" not in doc.text and "Privacy policy" not in doc.text
    assert doc.title == "Election result"


def test_markdown_front_matter_and_markup(tmp_path):
    (tmp_path / "a.md").write_text(
        "---\ntitle: Front title\npublisher: Wire\npublished: 2001-04-01\n---\n"
        "# Heading\n\nSome **bold** [link](http://x) text.\n",
        encoding="utf-8",
    )
    [doc] = load_paths([tmp_path / "a.md"]).documents
    assert doc.title == "Front title" and doc.metadata["publisher"] == "Wire"
    assert doc.metadata["published"] == "2001-04-01"
    assert "Some bold link text." in doc.text and "**" not in doc.text


def test_unsupported_file_given_explicitly_is_reported(tmp_path):
    f = tmp_path / "notes.pdf"
    f.write_bytes(b"%PDF-1.4")
    result = load_paths([f])
    assert not result.documents and "unsupported file type .pdf" in str(result.problems[0])


def test_a_folder_under_a_dotted_folder_is_read_but_hidden_files_inside_are_not(tmp_path):
    from rag.loaders import load_paths

    folder = tmp_path / ".rag" / "archive" / "corpus"
    (folder / ".cache").mkdir(parents=True)
    (folder / "story.txt").write_text("Harbour news\n\nThe harbour reopened in May.", encoding="utf-8")
    (folder / ".cache" / "old.txt").write_text("Stale\n\nNot an article.", encoding="utf-8")
    result = load_paths([folder])
    assert [d.source for d in result.documents] == [str(folder / "story.txt")]
