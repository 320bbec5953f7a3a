"""The disk store (rag/store/disk.py, rag/store/disk_writer.py): the folder store's guarantees, bounded memory."""

import os
import shutil
import signal
import subprocess
import sys

import numpy as np
import pytest
from conftest import CORPUS, ROOT, CountingEmbedder, ingest_folder
from conftest import ingest_index as ingest

from rag import store
from rag.errors import IndexError_, IndexMismatchError
from rag.index import IdIndex, IndexParams
from rag.ingest import PruneRefused
from rag.retrieval import Filters, Retriever
from rag.store import disk
from rag.store.disk import DiskStore

KOSTUNICA = "000_c072f841d33a32ed"


def _ingest(paths, index_dir, embedder, **kw):
    return ingest(paths, index_dir=index_dir, embedder=embedder, backend="disk", **kw)


@pytest.fixture()
def corpus_copy(tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    return folder


@pytest.fixture()
def disk_index(tmp_path, corpus_copy, embedder):
    index_dir = tmp_path / "index"
    _ingest([corpus_copy], index_dir, embedder)
    return index_dir


def _texts(index_dir):
    s = DiskStore(index_dir)
    try:
        return {d: [c.text for c in s.document_chunks(d)] for d in s.document_ids()}
    finally:
        s.close()


def test_search_matches_the_folder_store(tmp_path, corpus_copy, embedder, disk_index):
    """Same chunks, same dense ranking; lexical folds diacritics ("Kostunica" finds "Koštunica")."""
    ingest_folder([corpus_copy], index_dir=tmp_path / "folder", embedder=embedder)
    folder = Retriever(store.load(tmp_path / "folder"), embedder)
    ondisk = Retriever(DiskStore(disk_index), embedder)
    assert ondisk.size == folder.size and ondisk.store.counts()["documents"] == 2
    assert ondisk.store.document_ids() == folder.store.document_ids()
    for doc_id in folder.store.document_ids():
        assert ondisk.store.document_chunks(doc_id) == folder.store.document_chunks(doc_id)
    for q in ("Kostunica 48.96", "What did Clinton and Putin discuss about Milosevic?"):
        assert ([h.chunk for h in ondisk.search(q, 5, mode="dense")]
                == [h.chunk for h in folder.search(q, 5, mode="dense")])
    hit = ondisk.search("Kostunica", 1, mode="lexical")[0]
    assert "Koštunica" in hit.chunk.text
    assert ondisk.search("48.96", 1, mode="lexical")[0].chunk.text.count("48.96") >= 1
    # BM25 with bm25s' IDF over the same tokens: lexical and fused rankings are the folder store's.
    for mode, fusion in (("lexical", "rrf"), ("hybrid", "rrf"), ("hybrid", "weighted")):
        a = Retriever(DiskStore(disk_index), embedder, mode=mode, fusion=fusion)
        b = Retriever(store.load(tmp_path / "folder"), embedder, mode=mode, fusion=fusion)
        for q in ("Kostunica 48.96", "Who met Milosevic in Moscow?"):
            assert [h.chunk.chunk_id for h in a.search(q, 5)] == [h.chunk.chunk_id for h in b.search(q, 5)]


def test_filters_run_in_sql(disk_index, embedder):
    r = Retriever(DiskStore(disk_index), embedder)
    hits = r.search("Putin Clinton", 5, filters=Filters(where={"publisher": "meduza"}))  # folded equality
    assert hits and {h.chunk.doc_id for h in hits} == {KOSTUNICA}
    assert {h.chunk.doc_id for h in r.search("Putin", 5, filters=Filters(where={"doc_id": KOSTUNICA}))} == {KOSTUNICA}
    assert r.search("Putin", 5, filters=Filters(where={"publisher": "nobody"})) == []
    assert r.search("Putin", 5, mode="lexical", filters=Filters(since="2000-01-01")) == []  # undated articles


def test_incremental_update_rollback_and_prune(tmp_path, corpus_copy, embedder, disk_index):
    first = _texts(disk_index)
    article = corpus_copy / "001_557b18325e1c198b.txt"
    article.write_text(article.read_text(encoding="utf-8") + "\n\nZanzibarian quokkas voted on Tuesday.",
                       encoding="utf-8")
    counting = CountingEmbedder(embedder)
    report = _ingest([corpus_copy], disk_index, counting)
    assert (report.updated, report.unchanged) == (1, 1)
    # Unchanged chunk texts keep their stored vectors: only the edited tail is embedded.
    assert 0 < len(counting.embedded) < len(first["001_557b18325e1c198b"])
    r = Retriever(DiskStore(disk_index), embedder)
    assert "quokkas" in r.search("Zanzibarian quokkas", 1, mode="lexical")[0].chunk.text
    snaps = store.list_snapshots(disk_index, "disk")
    assert len(snaps) == 2 and snaps[-1].live

    assert store.rollback(disk_index, backend="disk") == snaps[0].name
    assert _texts(disk_index) == first
    old = DiskStore(disk_index)
    assert old.search("Zanzibarian quokkas", None, 5, mode="lexical", fusion="rrf", alpha=0.3) == []
    assert old.dense.ntotal == old.counts()["chunks"] == sum(len(t) for t in first.values())
    # A running store follows another process's switch (here: rolling forward again).
    store.rollback(disk_index, snaps[1].name, backend="disk")
    assert "quokkas" in " ".join(
        c.chunk.text for c in old.search("quokkas", None, 5, mode="lexical", fusion="rrf", alpha=0.3))

    article.unlink()
    with pytest.raises(PruneRefused):  # half the archive
        _ingest([corpus_copy], disk_index, embedder, prune=True)
    report = _ingest([corpus_copy], disk_index, embedder, prune=True, force=True, keep_snapshots=2)
    assert report.removed == 1 and report.documents == 1
    assert list(_texts(disk_index)) == [KOSTUNICA]
    assert len(store.list_snapshots(disk_index, "disk")) == 2  # older versions and their rows collected
    assert len(list(disk_index.glob("dense-*.faiss"))) == 1


def test_kept_when_not_given_and_rebuild_refuses_to_drop(tmp_path, corpus_copy, embedder, disk_index):
    only = tmp_path / "one"
    only.mkdir()
    shutil.copy(corpus_copy / "articles.toml", only)
    shutil.copy(corpus_copy / f"{KOSTUNICA}.txt", only)
    report = _ingest([only], disk_index, embedder)
    assert report.kept_not_given == 1 and report.documents == 2
    with pytest.raises(PruneRefused):
        _ingest([only], disk_index, embedder, rebuild=True)
    assert report.documents == DiskStore(disk_index).counts()["documents"]


SLOW_COMMIT = """
import sys, time
import rag.store.disk as disk
save = disk.save_dense
def slow(*args, **kwargs):  # rows written, FAISS file on disk, transaction not committed: a long window
    out = save(*args, **kwargs)
    print("WRITING", flush=True)
    time.sleep(60)
    return out
disk.save_dense = slow
from rag.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ingest_killed_before_commit_leaves_the_previous_version(tmp_path, corpus_copy, embedder, disk_index):
    before = _texts(disk_index)
    (corpus_copy / "late.txt").write_text("A late article about the Zyxwvut tribunal.", encoding="utf-8")
    env = {**os.environ, "RAG_INDEX_DIR": str(disk_index), "RAG_EMBEDDED_BACKEND": "disk"}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_COMMIT, "ingest", str(corpus_copy), "--quiet"], cwd=ROOT,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    assert _texts(disk_index) == before
    assert "Zyxwvut" not in " ".join(c.chunk.text for c in DiskStore(disk_index).search(
        "Zyxwvut", None, 5, mode="lexical", fusion="rrf", alpha=0.3))
    report = _ingest([corpus_copy], disk_index, embedder)
    assert report.added == 1 and report.unchanged == 2
    assert len(list(disk_index.glob("dense-*.faiss"))) == 1


def test_corrupt_files_are_named_and_rebuild_repairs(tmp_path, corpus_copy, embedder, disk_index):
    live = disk.live_version(disk.connect(disk_index))
    faiss_file = disk.dense_path(disk_index, live)
    faiss_file.write_bytes(b"not an index")
    with pytest.raises(IndexError_, match=str(faiss_file)):
        DiskStore(disk_index)
    for suffix in ("-wal", "-shm"):
        (disk_index / (disk.FILE + suffix)).unlink(missing_ok=True)
    disk.path_of(disk_index).write_bytes(b"garbage" * 1000)
    with pytest.raises(IndexError_, match="store.sqlite.*rag ingest --rebuild"):
        DiskStore(disk_index)
    with pytest.raises(IndexError_, match="store.sqlite"):
        _ingest([corpus_copy], disk_index, embedder)
    report = _ingest([corpus_copy], disk_index, embedder, rebuild=True)
    assert report.documents == 2 and DiskStore(disk_index).counts()["chunks"] == report.chunks


def test_auto_gives_a_new_index_the_disk_store_and_keeps_a_folder_index_a_folder(tmp_path, corpus_copy, embedder):
    """RAG_EMBEDDED_BACKEND=auto (the default) follows the files found; nothing is converted unasked."""
    fresh, old = tmp_path / "fresh", tmp_path / "old"
    assert store.embedded_kind(fresh) == "disk" and not store.has_index(fresh)
    ingest([corpus_copy], index_dir=fresh, embedder=embedder)
    assert disk.is_disk_store(fresh) and not (fresh / store.CURRENT).exists() and store.has_index(fresh)
    ingest_folder([corpus_copy], index_dir=old, embedder=embedder)
    assert store.embedded_kind(old) == "folder"
    (corpus_copy / "late.txt").write_text("A late article about the Hague tribunal.", encoding="utf-8")
    report = ingest([corpus_copy], index_dir=old, embedder=embedder)  # auto: updated in place, as a folder
    assert report.added == 1 and not disk.is_disk_store(old) and len(store.load(old).documents) == 3
    ingest([corpus_copy], index_dir=old, embedder=embedder, backend="disk", rebuild=True)  # asked: moved
    assert store.embedded_kind(old) == "disk" and DiskStore(old).counts()["documents"] == 3


def test_folder_index_asks_for_a_rebuild(tmp_path, corpus_copy, embedder):
    index_dir = tmp_path / "index"
    ingest_folder([corpus_copy], index_dir=index_dir, embedder=embedder)
    with pytest.raises(IndexMismatchError, match="rebuild"):
        _ingest([corpus_copy], index_dir, embedder)
    _ingest([corpus_copy], index_dir, embedder, rebuild=True)
    assert DiskStore(index_dir).counts()["documents"] == 2
    assert store.load(index_dir).chunks  # the snapshot folders are left as they were


def test_dense_index_grows_past_the_threshold_into_ivf(tmp_path, embedder):
    """Past ann_threshold the flat index is replaced by a trained IVF-SQ8 one; later adds go into its lists."""
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(60):
        (folder / f"a{i:03}.txt").write_text(f"Article {i}: the council of district {i} voted on budget line {i * 7}.",
                                             encoding="utf-8")
    index_dir = tmp_path / "index"
    params = IndexParams(ann_threshold=40, ivf_nprobe=64)
    _ingest([folder], index_dir, embedder, params=params)
    s = DiskStore(index_dir, nprobe=64)
    assert s.dense.kind == "ivf" and s.dense.ntotal == 60
    (folder / "b.txt").write_text("A new article on the harbour.", encoding="utf-8")
    _ingest([folder], index_dir, embedder, params=params)
    s = DiskStore(index_dir, nprobe=64)
    assert s.dense.kind == "ivf" and s.dense.ntotal == 61
    qvec = embedder.embed(["harbour article"])[0]
    assert s.search("harbour", qvec, 3, mode="dense", fusion="rrf", alpha=0.3)[0].chunk.doc_id == "b"


def test_id_index_add_remove_and_filter():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2000, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    ids = np.arange(1000, 3000)
    for index in (IdIndex.flat(16), IdIndex.train_ivf(x, len(x), nprobe=64)):
        index.add(ids, x)
        _, got = index.search(x[5], 1)
        assert got[0] == 1005
        assert index.remove(np.array([1005])) == 1 and index.ntotal == 1999
        assert 1005 not in index.search(x[5], 10)[1]
        allowed = np.array([2500, 2600])
        assert set(index.search(x[5], 10, allowed)[1]) == {2500, 2600}
