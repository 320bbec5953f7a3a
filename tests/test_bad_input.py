"""Bad input, in articles or in the index on disk, is named and skipped; it never aborts everything."""

import json
import shutil

import pytest
from conftest import CORPUS
from conftest import ingest_folder as ingest  # the snapshot folder's files; tests/test_store_disk.py: the disk store's

from rag import store
from rag.errors import IndexError_
from rag.ingest import NothingToIngest
from rag.loaders import load_paths


def test_bad_front_matter_names_the_file_and_line_and_skips_only_it(tmp_path):
    (tmp_path / "good.md").write_text("---\ntitle: Good\n---\nKoštunica won.", encoding="utf-8")
    (tmp_path / "bad.md").write_text("---\ntitle: ok\npublished: [2020\n---\nText.", encoding="utf-8")
    (tmp_path / "list.md").write_text("---\n- a\n- b\n---\nText.", encoding="utf-8")
    result = load_paths([tmp_path])
    assert [d.doc_id for d in result.documents] == ["good"]
    messages = sorted(str(p) for p in result.problems)
    assert len(messages) == 2
    assert "bad.md:" in messages[0] and "front matter" in messages[0]
    assert "list.md:2: front matter must be key: value lines" in messages[1]


def test_bad_articles_toml_is_named_and_its_files_keep_their_previous_version(tmp_path, embedder):
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    index_dir = tmp_path / "index"
    ingest([folder], index_dir=index_dir, embedder=embedder)
    titles = {c.doc_id: c.title for c in store.load(index_dir).chunks}
    (folder / "articles.toml").write_text('["000_c072f841d33a32ed.txt"]\ntitle = "unterminated\n', encoding="utf-8")
    other = tmp_path / "other"
    other.mkdir()
    (other / "fine.txt").write_text("A fine article from another folder.", encoding="utf-8")
    report = ingest([folder, other], index_dir=index_dir, embedder=embedder)
    shown = [str(p) for p in report.problems]
    assert any("articles.toml:2: invalid TOML" in m for m in shown), shown
    assert sum("skipped: its metadata file" in m for m in shown) == 2
    assert report.added == 1 and report.kept_after_error == 2
    after = {c.doc_id: c.title for c in store.load(index_dir).chunks}
    assert {k: after[k] for k in titles} == titles and "fine" in after


def test_unsupported_files_are_counted_and_only_unsupported_input_changes_nothing(tmp_path, embedder):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.pdf").write_bytes(b"%PDF-1.4")
    (folder / "b.PDF").write_bytes(b"%PDF-1.4")
    (folder / "c.docx").write_bytes(b"PK")
    assert load_paths([folder]).unsupported == {".pdf": 2, ".docx": 1}
    index_dir = tmp_path / "index"
    with pytest.raises(NothingToIngest, match="3 of an unsupported type") as info:
        ingest([folder], index_dir=index_dir, embedder=embedder)
    assert info.value.report.unsupported == {".pdf": 2, ".docx": 1}
    assert not index_dir.exists()
    (folder / "ok.txt").write_text("An article.", encoding="utf-8")
    report = ingest([folder], index_dir=index_dir, embedder=embedder)
    assert "3 unsupported files ignored (1 .docx, 2 .pdf)" in report.summary()


def test_hit_metadata_names_files_relative_to_the_given_folder(tmp_path):
    folder = tmp_path / "archive"
    (folder / "2020").mkdir(parents=True)
    (folder / "2020" / "a.txt").write_text("Text a.", encoding="utf-8")
    (folder / "b.jsonl").write_text(json.dumps({"id": "b1", "text": "Text b."}) + "\n", encoding="utf-8")
    docs = {d.doc_id: d for d in load_paths([folder.resolve()]).documents}
    assert docs["a"].metadata["source"] == "archive/2020/a.txt"
    assert docs["b1"].metadata["source"] == "archive/b.jsonl:1"
    assert str(tmp_path) not in json.dumps([dict(d.metadata) for d in docs.values()])


@pytest.fixture()
def index_dir(tmp_path, embedder):
    index_dir = tmp_path / "index"
    ingest([CORPUS], index_dir=index_dir, embedder=embedder)
    return index_dir


def _corrupt_current(index_dir):
    (index_dir / "CURRENT").write_bytes(b"\xff\xfe\x00garbage")


def _truncate_chunks(index_dir):
    f = store.current_path(index_dir) / "chunks.jsonl"
    data = f.read_bytes()
    f.write_bytes(data[: len(data) // 2])


def _bad_manifest(index_dir):
    (store.current_path(index_dir) / "manifest.json").write_text('{"format_version": 1, "emb', encoding="utf-8")


def _bad_lexical(index_dir):
    folder = store.current_path(index_dir) / "lexical"
    for f in folder.iterdir():
        if f.suffix in (".json", ".npy") and f.name != "size":
            f.write_bytes(b"\x00\x01 broken")


def _bad_vectors(index_dir):
    (store.current_path(index_dir) / "vectors.npy").write_bytes(b"not numpy")


@pytest.mark.parametrize("damage, names", [
    (_corrupt_current, "CURRENT"), (_truncate_chunks, "chunks.jsonl"), (_bad_manifest, "manifest.json"),
    (_bad_lexical, "lexical"), (_bad_vectors, "vectors.npy"),
])
def test_corrupt_index_files_are_named_and_rebuild_repairs_them(index_dir, embedder, damage, names):
    damage(index_dir)
    with pytest.raises(IndexError_) as info:
        store.load(index_dir)
    message = str(info.value)
    assert names in message and "rag ingest --rebuild" in message, message
    with pytest.raises(IndexError_, match="rag ingest --rebuild"):
        ingest([CORPUS], index_dir=index_dir, embedder=embedder)
    report = ingest([CORPUS], index_dir=index_dir, embedder=embedder, rebuild=True)
    assert report.documents == 2
    assert len(store.load(index_dir).chunks) == report.chunks


def test_rebuild_over_a_garbage_current_still_guards_the_newest_snapshots_documents(tmp_path, embedder):
    index_dir = tmp_path / "index"
    ingest([CORPUS], index_dir=index_dir, embedder=embedder)
    one = tmp_path / "one"
    one.mkdir()
    (one / "extra.txt").write_text("An extra article.", encoding="utf-8")
    ingest([one], index_dir=index_dir, embedder=embedder)
    _corrupt_current(index_dir)
    from rag.ingest import PruneRefused

    with pytest.raises(PruneRefused, match="drop 1 of 3"):
        ingest([CORPUS], index_dir=index_dir, embedder=embedder, rebuild=True)
    assert ingest([CORPUS, one], index_dir=index_dir, embedder=embedder, rebuild=True).documents == 3
