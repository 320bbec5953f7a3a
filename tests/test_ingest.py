import os
import shutil
import signal
import subprocess
import sys

import pytest
from conftest import CORPUS, FOLDER_ENV, MODEL_CACHE, ROOT, CountingEmbedder
from conftest import ingest_folder as ingest  # the folder store's files and rules (conftest.FOLDER_ENV)

from rag import store
from rag.chunking import ChunkingSettings
from rag.errors import IndexMismatchError
from rag.models import make_embedder
from rag.retrieval import Retriever


@pytest.fixture()
def corpus_copy(tmp_path):
    folder = tmp_path / "corpus"
    shutil.copytree(CORPUS, folder)
    return folder


def _top_chunk(index_dir, embedder, query):
    snap = store.load(index_dir)
    return Retriever(snap, embedder).search(query, k=1)[0].chunk.chunk_id


def test_manifest_records_what_the_index_was_built_with(tmp_path, embedder):
    index_dir = tmp_path / "index"
    ingest([CORPUS], index_dir=index_dir, embedder=embedder)
    snap = store.load(index_dir)
    m = snap.manifest
    assert m["format_version"] == store.FORMAT_VERSION
    # The default backend: the one measured fastest on this CPU (rag/autotune.py)
    assert m["embedder"] == {"id": make_embedder("auto", cache_dir=MODEL_CACHE).id, "dimension": 384}
    assert m["chunking"]["max_tokens"] == 160
    assert set(m["documents"]) == {"000_c072f841d33a32ed", "001_557b18325e1c198b"}
    assert all(len(d["hash"]) == 64 for d in m["documents"].values())
    assert len(snap.chunks) == len(snap.vectors) == snap.dense.ntotal


def test_reingest_embeds_only_the_changed_document_and_prunes_removed_ones_when_asked(tmp_path, corpus_copy, embedder):
    index_dir = tmp_path / "index"
    counting = CountingEmbedder(embedder)
    first = ingest([corpus_copy], index_dir=index_dir, embedder=counting)
    assert first.added == 2 and first.embedded_chunks == first.chunks

    counting.calls.clear()
    again = ingest([corpus_copy], index_dir=index_dir, embedder=counting)
    assert again.unchanged == 2 and again.embedded_chunks == 0 and counting.embedded == []

    short = corpus_copy / "001_557b18325e1c198b.txt"
    short.write_text(short.read_text(encoding="utf-8") + "\nA new closing paragraph about Belgrade.", encoding="utf-8")
    counting.calls.clear()
    touched = ingest([corpus_copy], index_dir=index_dir, embedder=counting)
    assert touched.updated == 1 and touched.unchanged == 1
    snap = store.load(index_dir)
    short_chunks = [c.text for c in snap.chunks if c.doc_id == "001_557b18325e1c198b"]
    # Only chunks whose text is new are embedded; the touched document's other chunks come from the cache.
    assert counting.embedded and set(counting.embedded) <= set(short_chunks)
    assert touched.embedded_chunks + touched.cached_chunks == len(short_chunks)
    assert any("new closing paragraph" in t for t in counting.embedded)

    short.unlink()
    kept = ingest([corpus_copy], index_dir=index_dir, embedder=counting)
    assert kept.removed == 0 and kept.kept_not_given == 1 and kept.documents == 2
    removed = ingest([corpus_copy], index_dir=index_dir, embedder=counting, prune=True, force=True)
    assert removed.removed == 1 and removed.documents == 1
    assert {c.doc_id for c in store.load(index_dir).chunks} == {"000_c072f841d33a32ed"}


def test_a_file_that_turns_bad_keeps_its_previous_version(tmp_path, corpus_copy, embedder):
    index_dir = tmp_path / "index"
    ingest([corpus_copy], index_dir=index_dir, embedder=embedder)
    (corpus_copy / "001_557b18325e1c198b.txt").write_bytes(b"\xff\xfe broken \x00")
    (corpus_copy / "new.txt").write_text("A brand new article about Montenegro.", encoding="utf-8")
    report = ingest([corpus_copy], index_dir=index_dir, embedder=embedder)
    assert report.kept_after_error == 1 and report.added == 1 and report.removed == 0
    assert len(report.problems) == 1 and "001_557b18325e1c198b.txt" in str(report.problems[0])
    docs = {c.doc_id for c in store.load(index_dir).chunks}
    assert docs == {"000_c072f841d33a32ed", "001_557b18325e1c198b", "new"}


def test_index_built_with_other_settings_is_refused_with_rebuild_advice(tmp_path, corpus_copy, embedder):
    index_dir = tmp_path / "index"
    ingest([corpus_copy], index_dir=index_dir, embedder=embedder)
    with pytest.raises(IndexMismatchError, match="--rebuild"):
        ingest([corpus_copy], index_dir=index_dir, embedder=embedder, chunking=ChunkingSettings(100, 20))
    manifest = store.load(index_dir).manifest
    with pytest.raises(IndexMismatchError, match="other-model.*--rebuild"):
        store.check_compatible(manifest, embedder_id="other-model", chunking=ChunkingSettings().to_json(),
                               where=index_dir)
    rebuilt = ingest([corpus_copy], index_dir=index_dir, embedder=embedder, chunking=ChunkingSettings(100, 20),
                     rebuild=True)
    assert rebuilt.embedded_chunks == rebuilt.chunks > 0


def test_failure_mid_write_leaves_the_previous_index_live(tmp_path, corpus_copy, embedder, monkeypatch):
    index_dir = tmp_path / "index"
    ingest([corpus_copy], index_dir=index_dir, embedder=embedder)
    before = _top_chunk(index_dir, embedder, "Kostunica 48.96")
    (corpus_copy / "extra.txt").write_text("An extra article.", encoding="utf-8")

    def boom(*args, **kwargs):
        raise OSError("disk full")

    import numpy as np

    monkeypatch.setattr(np, "save", boom)  # numpy is one module: rag/store/embedded.py saves with it
    with pytest.raises(OSError):
        ingest([corpus_copy], index_dir=index_dir, embedder=embedder)
    monkeypatch.undo()
    snap = store.load(index_dir)
    assert "extra" not in {c.doc_id for c in snap.chunks}
    assert _top_chunk(index_dir, embedder, "Kostunica 48.96") == before


SLOW_DISK = """
import sys, time
import rag.store.embedded as store  # the module whose save() calls _fsync_tree
fsync = store._fsync_tree
def slow(folder):  # the snapshot's files are on disk but not yet switched in: a long window
    fsync(folder)
    print("WRITING", flush=True)
    time.sleep(60)
store._fsync_tree = slow
from rag.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_ingest_killed_mid_write_leaves_a_loadable_index(tmp_path, embedder):
    """SIGKILL a real `rag ingest` while it writes a new snapshot; the old one still answers."""
    index_dir = tmp_path / "index"
    ingest([CORPUS], index_dir=index_dir, embedder=embedder)
    before = _top_chunk(index_dir, embedder, "Kostunica 48.96")
    extra = tmp_path / "extra"
    shutil.copytree(CORPUS, extra)
    (extra / "late.txt").write_text("A late article about the Hague tribunal.", encoding="utf-8")
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), **FOLDER_ENV}
    proc = subprocess.Popen([sys.executable, "-c", SLOW_DISK, "ingest", str(extra), "--quiet"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert proc.stdout.readline().strip() == "WRITING"
        assert any(p.name.startswith(".tmp-v-") for p in index_dir.iterdir())
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.kill()
        proc.wait()
    snap = store.load(index_dir)
    assert "late" not in {c.doc_id for c in snap.chunks}
    assert _top_chunk(index_dir, embedder, "Kostunica 48.96") == before
    # The next ingest finishes the job and clears the half-written snapshot away.
    report = ingest([extra], index_dir=index_dir, embedder=embedder)
    assert report.added == 1 and report.unchanged == 2
    assert not any(p.name.startswith(".tmp-") for p in index_dir.iterdir())


KILL_AFTER_BATCHES = """
import sys
import rag.embedcache as ec
put = ec.EmbedCache.put_many
calls = []
def put_then_die(self, texts, vectors):
    put(self, texts, vectors)
    calls.append(1)
    if len(calls) == 2:
        print("TWO BATCHES", flush=True)
        import os, signal
        os.kill(os.getpid(), signal.SIGKILL)
ec.EmbedCache.put_many = put_then_die
from rag.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_an_ingest_killed_while_embedding_resumes_from_the_cache(tmp_path, embedder):
    """kill -9 after two embedding batches: the rerun embeds only what the killed run had not."""
    import rag.ingest as ingest_mod

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        (folder / f"a{i:03}.txt").write_text(
            " ".join(f"Article {i} sentence {j} about the Belgrade council and its budget vote." for j in range(40)),
            encoding="utf-8")
    index_dir = tmp_path / "index"
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir), **FOLDER_ENV}
    proc = subprocess.run([sys.executable, "-c", KILL_AFTER_BATCHES, "ingest", str(folder), "--quiet"], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == -signal.SIGKILL and "TWO BATCHES" in proc.stdout, proc.stderr[-2000:]
    assert store.current_path(index_dir) is None  # nothing was switched in
    counting = CountingEmbedder(embedder)
    report = ingest([folder], index_dir=index_dir, embedder=counting)
    assert report.chunks > 2 * ingest_mod.EMBED_BATCH and report.cached_chunks == 2 * ingest_mod.EMBED_BATCH
    assert report.embedded_chunks == report.chunks - 2 * ingest_mod.EMBED_BATCH == len(counting.embedded)


def test_ingest_holds_one_document_at_a_time_and_one_copy_of_the_vectors(tmp_path, embedder, monkeypatch):
    """Finding 8 (a 50 MB file took 2.9 GB): documents are read, chunked and dropped one file at a time,
    and the embedded vectors become the index's matrix without a second copy."""
    import gc
    import weakref

    import numpy as np

    import rag.ingest as ingest_mod
    import rag.store.folder_writer as writer_mod

    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(6):
        (folder / f"a{i}.txt").write_text(f"Article {i} says the council met on day {i}. It voted.", encoding="utf-8")
    seen: list[weakref.ref] = []
    alive_while_chunking: list[int] = []
    chunk = ingest_mod.chunk_document

    def watching(doc, *args, **kwargs):
        gc.collect()
        alive_while_chunking.append(sum(ref() is not None for ref in seen))
        seen.append(weakref.ref(doc))
        return chunk(doc, *args, **kwargs)

    assembled: list[tuple[np.ndarray | None, np.ndarray]] = []
    assemble = writer_mod._assemble

    def recording(parts, fresh, n, dim):
        out = assemble(parts, fresh, n, dim)
        assembled.append((fresh, out))
        return out

    monkeypatch.setattr(ingest_mod, "chunk_document", watching)
    monkeypatch.setattr(writer_mod, "_assemble", recording)
    report = ingest([folder], index_dir=tmp_path / "index", embedder=embedder)
    assert report.documents == 6
    # While a document is chunked, at most the one before it is still referenced (by the loop variable).
    assert max(alive_while_chunking) <= 1, alive_while_chunking
    (fresh, matrix), = assembled
    assert matrix is fresh  # all vectors new: the embedder's output is the matrix, not copied into one
