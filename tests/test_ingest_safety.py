"""Ingest can add, update and (only when asked) remove; it never empties an archive by accident."""

import os
import shutil
import subprocess
import sys

import pytest
from conftest import CORPUS, ROOT
from conftest import ingest_index as ingest_any

from devtools.textmatch import says
from rag import store
from rag.errors import IndexError_
from rag.ingest import NothingToIngest, PruneRefused

DOCS = {"000_c072f841d33a32ed", "001_557b18325e1c198b"}

# The same rules hold for both embedded stores: the disk store (the default) and snapshot folders.
BACKEND = "disk"


@pytest.fixture(params=["disk", "folder"])
def indexed(request, tmp_path, embedder, monkeypatch):
    monkeypatch.setitem(globals(), "BACKEND", request.param)
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    index_dir = tmp_path / "index"
    ingest([folder], index_dir=index_dir, embedder=embedder)
    return folder, index_dir


def ingest(*args, **kwargs):
    return ingest_any(*args, backend=BACKEND, **kwargs)


def _docs(index_dir):
    if store.embedded_kind(index_dir) == "disk":
        from rag.store.disk import DiskStore

        return set(DiskStore(index_dir).document_ids())
    return {c.doc_id for c in store.load(index_dir).chunks}


def _live(index_dir):
    return next(s.name for s in store.list_snapshots(index_dir) if s.live)


def test_ingesting_one_file_adds_it_and_keeps_the_rest(indexed, tmp_path, embedder):
    _, index_dir = indexed
    one = tmp_path / "new.txt"
    one.write_text("A new article about the Montenegrin referendum.", encoding="utf-8")
    report = ingest([one], index_dir=index_dir, embedder=embedder)
    assert report.removed == 0 and report.added == 1 and report.kept_not_given == 2
    assert _docs(index_dir) == DOCS | {"new"}


def test_an_empty_folder_changes_nothing_and_says_so(indexed, tmp_path, embedder):
    _, index_dir = indexed
    empty = tmp_path / "empty"
    empty.mkdir()
    live = _live(index_dir)
    with pytest.raises(NothingToIngest, match="nothing to ingest"):
        ingest([empty], index_dir=index_dir, embedder=embedder)
    with pytest.raises(NothingToIngest):
        ingest([empty], index_dir=index_dir, embedder=embedder, prune=True, force=True)
    assert _live(index_dir) == live and _docs(index_dir) == DOCS


def test_prune_removes_only_when_asked_and_within_the_allowed_share(indexed, embedder):
    folder, index_dir = indexed
    (folder / "001_557b18325e1c198b.txt").unlink()
    kept = ingest([folder], index_dir=index_dir, embedder=embedder)
    assert kept.removed == 0 and _docs(index_dir) == DOCS
    live = _live(index_dir)
    heard = []
    with pytest.raises(PruneRefused, match=r"remove 1 of 2 documents \(50%.*--force"):
        ingest([folder], index_dir=index_dir, embedder=embedder, prune=True, max_prune_share=0.25, notify=heard.append)
    assert _live(index_dir) == live and heard == []
    report = ingest([folder], index_dir=index_dir, embedder=embedder, prune=True, force=True, notify=heard.append)
    assert report.removed == 1 and heard == ["removing 1 of 2 documents that are not in the given paths"]
    assert _docs(index_dir) == {"000_c072f841d33a32ed"}
    # Within the share, --prune alone is enough.
    (folder / "x.txt").write_text("Article x.", encoding="utf-8")
    (folder / "y.txt").write_text("Article y.", encoding="utf-8")
    ingest([folder], index_dir=index_dir, embedder=embedder)
    (folder / "x.txt").unlink()
    assert ingest([folder], index_dir=index_dir, embedder=embedder, prune=True, max_prune_share=0.4).removed == 1


def test_rebuild_of_fewer_paths_is_refused_without_prune(indexed, tmp_path, embedder):
    folder, index_dir = indexed
    one = tmp_path / "only"
    one.mkdir()
    shutil.copy(folder / "000_c072f841d33a32ed.txt", one)
    with pytest.raises(PruneRefused, match="--rebuild would drop 1 of 2"):
        ingest([one], index_dir=index_dir, embedder=embedder, rebuild=True)
    assert _docs(index_dir) == DOCS


def test_last_snapshots_are_kept_and_rollback_returns_to_them(indexed, embedder):
    folder, index_dir = indexed
    names = [_live(index_dir)]
    for i in range(4):
        (folder / f"n{i}.txt").write_text(f"Article number {i}.", encoding="utf-8")
        ingest([folder], index_dir=index_dir, embedder=embedder, keep_snapshots=3)
        names.append(_live(index_dir))
    listed = store.list_snapshots(index_dir)
    assert [s.name for s in listed] == names[-3:] and listed[-1].live
    assert [s.documents for s in listed] == [4, 5, 6]
    assert store.rollback(index_dir) == names[-2]
    assert _docs(index_dir) == DOCS | {"n0", "n1", "n2"}
    assert store.rollback(index_dir, names[-3]) == names[-3]
    with pytest.raises(IndexError_, match="no usable snapshot"):
        store.rollback(index_dir, names[0])


def _rag(*args, index_dir):
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), "RAG_EMBEDDED_BACKEND": BACKEND}
    return subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)


@pytest.mark.slow
def test_cli_prune_force_list_and_rollback(indexed, tmp_path):
    folder, index_dir = indexed
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "scan.pdf").write_bytes(b"%PDF-1.4")
    proc = _rag("ingest", str(empty), "--quiet", index_dir=index_dir)
    # Counts as whole words: "1 of ..." must not be found inside "11 of ...".
    assert proc.returncode == 1 and "nothing to ingest" in proc.stderr
    assert says(proc.stderr, "1 of an unsupported type")
    (folder / "001_557b18325e1c198b.txt").unlink()
    proc = _rag("ingest", str(folder), "--quiet", "--prune", index_dir=index_dir)
    assert proc.returncode == 1 and "--force" in proc.stderr
    proc = _rag("ingest", str(folder), "--quiet", "--prune", "--force", index_dir=index_dir)
    assert proc.returncode == 0, proc.stderr
    assert "removing 1 of 2 documents" in proc.stderr and says(proc.stdout, "1 removed")
    listing = _rag("index", "list", index_dir=index_dir)
    lines = listing.stdout.splitlines()
    assert listing.returncode == 0 and len(lines) == 2 and lines[1].startswith("*") and says(lines[1], "1 documents")
    back = _rag("index", "rollback", index_dir=index_dir)
    assert back.returncode == 0 and lines[0].split()[0] in back.stdout
    assert _docs(index_dir) == DOCS
