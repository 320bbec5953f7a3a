import json
import os
import re
import subprocess
import sys

from conftest import CORPUS, ROOT

from devtools.textmatch import says


def _rag(*args, index_dir, check=True):
    env = {**os.environ, "RAG_INDEX_DIR": str(index_dir)}
    proc = subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def test_ingest_then_search_json(tmp_path):
    index_dir = tmp_path / "index"
    out = _rag("ingest", str(CORPUS), "--quiet", index_dir=index_dir).stdout
    # Whole words: "2 documents" must not be found inside "12 documents".
    assert says(out, "2 documents") and says(out, "0 skipped") and says(out, "chunks")
    proc = _rag("search", "What share did Kostunica get in the first round?", "--json", "-k", "3", index_dir=index_dir)
    result = json.loads(proc.stdout)
    assert result["query"] == "What share did Kostunica get in the first round?"
    assert len(result["hits"]) == 3
    assert {"rank", "score", "doc_id", "title", "chunk_id", "start", "end", "text"} <= set(result["hits"][0])
    assert any("48.96" in h["text"] for h in result["hits"])

    plain = _rag("search", "Bulldozer Revolution", "-k", "2", index_dir=index_dir).stdout
    # Rank 1 opens a line; " 1. " alone could be inside a passage ("on October 1. The ...").
    assert re.search(r"^ 1\. ", plain, re.M) and "Bulldozer" in plain

    filtered = _rag("search", "Milosevic", "--where", "publisher=Nobody", "--json", index_dir=index_dir).stdout
    assert json.loads(filtered)["hits"] == []


def test_missing_path_exits_2_and_names_it(tmp_path):
    proc = _rag("ingest", str(tmp_path / "nope"), index_dir=tmp_path / "index", check=False)
    assert proc.returncode == 2 and says(proc.stderr, "nope")


def test_bad_files_are_reported_but_the_rest_is_ingested(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "good.txt").write_text("Koštunica won the election.", encoding="utf-8")
    (folder / "bad.txt").write_bytes(b"")
    proc = _rag("ingest", str(folder), "--quiet", index_dir=tmp_path / "index")
    assert says(proc.stdout, "1 documents") and says(proc.stdout, "1 skipped")
    assert "bad.txt: empty file" in proc.stderr


def test_search_without_an_index_says_how_to_build_one(tmp_path):
    proc = _rag("search", "x", index_dir=tmp_path / "none", check=False)
    assert proc.returncode == 1 and "rag ingest" in proc.stderr


def test_ingest_shows_progress_before_it_embeds(tmp_path):
    """Finding 8's silence: the first line comes before any file is read, then reading and chunking
    count documents, then embedding counts chunks."""
    err = _rag("ingest", str(CORPUS), index_dir=tmp_path / "index").stderr
    # The progress bars by their labels ("desc: "): a bare "embedding" may be in the corpus path of the first line.
    first, chunking, embedding = err.find("reading "), err.find("reading and chunking: "), err.find("embedding: ")
    assert err.lstrip().startswith("reading "), err[:500]  # the very first output
    assert 0 <= first < chunking < embedding, err[-2000:]


def test_the_front_ends_commands_are_plugins_and_a_broken_one_is_named_not_fatal():
    from importlib.metadata import EntryPoint

    from rag.cli import PLUGIN_GROUP, _help, _plugins

    assert {"serve", "mcp", "embed-token", "eval", "bench"} <= set(_plugins())
    broken = EntryPoint(name="broken", value="no_such_module:COMMAND", group=PLUGIN_GROUP)
    assert _help(broken).startswith("(unavailable: ModuleNotFoundError")
    out = subprocess.run([sys.executable, "-m", "rag.cli", "--help"], capture_output=True, text=True, cwd=ROOT)
    # Whole words: "bench" is also in "benchmark", "serve" in "reserved".
    assert out.returncode == 0 and says(out.stdout, "serve") and says(out.stdout, "bench")
