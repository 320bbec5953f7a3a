"""The real-archive build (eval/archive/build.py): the Brown Form C converter and the build's counts."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

from eval.archive import build
from rag.loaders import load_paths

ROOT = Path(__file__).resolve().parents[1]

TAGGED = (
    "\n\n\tCity/nn-hl backs/vbz-hl new/jj-hl Park/nn-tl-hl plan/nn-hl \n"
    "\tThe/at council/nn voted/vbd 7/cd to/in 2/cd ,/, Mr./np Lee/np said/vbd ,/, ``/`` and/cc we're/ppss+ber "
    "glad/jj ''/'' ./.\n"
    "Its/pp$ cost/nn (/( $1,119/nns )/) was/bedz small/jj ;/. the/at 1/2/cd mile/nn was/bedz '/' free/jj '/' ./.\n"
    "./.\n"
    "\n\n\tA/at second/od paragraph/nn ?/. ?/.\n"
    "He/pps went/vbd to/in Georgia/np Tech./np ./.\n"
)


def test_converter_drops_tags_and_keeps_paragraphs_and_headline():
    text, headline = build.brown_to_text(TAGGED)
    assert headline == "City backs new Park plan"
    assert text.split("\n\n") == [
        "City backs new Park plan",
        'The council voted 7 to 2, Mr. Lee said, "and we\'re glad". '
        "Its cost ($1,119) was small; the 1/2 mile was 'free'.",
        "A second paragraph? He went to Georgia Tech.\n",
    ]
    assert "/" not in text.replace("1/2", "")


def test_converter_handles_a_sample_without_headline():
    text, headline = build.brown_to_text("\tIt/pps rained/vbd ./.\n")
    assert (text, headline) == ("It rained.\n", None)


def test_contents_sources_are_parsed():
    contents = (
        "B01. The Atlanta Constitution, March 6, 1961, p.4\n"
        "\tUsed by permission of The Atlanta Constitution\n\n"
        "E20. [Anonymous,] \"What You Should Know About Air Conditioning for New\n"
        "Homes,\"\n\tHow-to-Do-It-Encyclopedia.\n"
    )
    assert build.parse_contents(contents) == {
        "cb01": "The Atlanta Constitution, March 6, 1961, p.4",
        "ce20": '[Anonymous,] "What You Should Know About Air Conditioning for New Homes,"',
    }


def test_a_failing_download_names_the_step(tmp_path):
    with pytest.raises(build.BuildError, match=r"^step x: cannot run 'no-such-tool-here'"):
        build._run("step x", ["no-such-tool-here"], cwd=tmp_path)


@pytest.mark.slow
def test_build_counts_and_idempotence(tmp_path, capsys):
    """Downloads into the repository's cache (.rag/archive/src) unless they are already there."""
    out = tmp_path / "corpus"
    cache = ROOT / ".rag" / "archive" / "src"
    assert build.main(["--out", str(out), "--cache", str(cache)]) == 0
    first = capsys.readouterr().out
    assert "10033 documents" in first and "cb 27, cc 17, cd 17, ce 36, cf 48, ch 30" in first

    brown = sorted(p.name for p in (out / "brown").glob("*.txt"))
    assert len(brown) == 175 and not any(n.startswith("ca") for n in brown)
    sidecar = tomllib.loads((out / "brown" / "articles.toml").read_text(encoding="utf-8"))
    assert set(sidecar) == set(brown)
    assert {v["publisher"] for v in sidecar.values()} == {"Brown corpus (1961)"}
    lines = (out / "wiki" / "wiki.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(lines) == 10033
    first_record = json.loads(lines[0])
    assert {"id", "title", "text", "publisher"} <= set(first_record) and first_record["publisher"] == "Wikipedia"

    loaded = load_paths([out])
    assert not loaded.problems, loaded.problems[:3]
    assert len(loaded.documents) == 175 + 10033 + 2
    assert len({d.doc_id for d in loaded.documents}) == len(loaded.documents)

    assert build.main(["--out", str(out), "--cache", str(cache)]) == 0
    assert capsys.readouterr().out.count(" 0 files written") == 3  # nothing rewritten
