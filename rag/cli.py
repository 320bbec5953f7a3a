"""The `rag` command: ingest, search (and, as they land, ask, chat, serve, eval)."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .errors import LoadError, RagError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args) or 0
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _engine(args: argparse.Namespace):  # noqa: ANN202 - keeps `rag --help` free of heavy imports
    from .config import load_settings
    from .pipeline import Engine

    return Engine(load_settings(index_dir=getattr(args, "index", None)))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Question answering over a news archive.")
    sub = p.add_subparsers(title="commands")

    ing = sub.add_parser("ingest", help="build or update the index from article files")
    ing.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the corpus folder)")
    ing.add_argument("--index", type=Path, help="index folder (default: .rag/index)")
    ing.add_argument("--rebuild", action="store_true", help="re-embed everything from scratch")
    ing.add_argument("--quiet", action="store_true", help="no progress bar")
    ing.set_defaults(func=_cmd_ingest)

    se = sub.add_parser("search", help="show the passages retrieved for a query")
    se.add_argument("query")
    se.add_argument("-k", type=int, default=None, help="number of hits (default 5)")
    se.add_argument("--index", type=Path)
    se.add_argument("--mode", choices=["dense", "lexical", "hybrid"])
    se.add_argument("--where", action="append", default=[], metavar="KEY=VALUE",
                    help="metadata filter, e.g. publisher=Meduza or doc_id=...; repeatable")
    se.add_argument("--since", metavar="YYYY-MM-DD", help="published on or after")
    se.add_argument("--until", metavar="YYYY-MM-DD", help="published on or before")
    se.add_argument("--json", action="store_true", help="print one JSON object")
    se.set_defaults(func=_cmd_search)
    return p


def _cmd_ingest(args: argparse.Namespace) -> int:
    engine = _engine(args)
    report = engine.ingest(args.paths or None, rebuild=args.rebuild, progress=not args.quiet)
    for problem in report.problems:
        print(f"skipped {problem}", file=sys.stderr)
    print(f"ingested {report.summary()}")
    print(f"index: {report.index_path}")
    return 0


def _cmd_search(args: argparse.Namespace) -> int:
    from .retrieval import Filters

    where = {}
    for item in args.where:
        key, sep, value = item.partition("=")
        if not sep or not key:
            print(f"error: --where expects KEY=VALUE, got {item!r}", file=sys.stderr)
            return 2
        where[key.strip()] = value.strip()
    for flag in ("since", "until"):
        value = getattr(args, flag)
        if value and not _is_date(value):
            print(f"error: --{flag} expects a date YYYY-MM-DD, got {value!r}", file=sys.stderr)
            return 2
    engine = _engine(args)
    hits = engine.search(args.query, args.k, mode=args.mode,
                         filters=Filters(where or None, args.since, args.until))
    if args.json:
        print(json.dumps({"query": args.query, "hits": [h.to_json() for h in hits]}, ensure_ascii=False, indent=1))
        return 0
    if not hits:
        print("no passages found")
    for h in hits:
        print(f"{h.rank:>2}. {h.score:.4f}  {h.chunk.title[:70]}  [{h.chunk.chunk_id}]")
        print(textwrap.indent(textwrap.fill(h.chunk.text, 96), "    "))
    return 0


def _is_date(value: str) -> bool:
    import datetime as dt

    try:
        dt.date.fromisoformat(value)
        return True
    except ValueError:
        return False


if __name__ == "__main__":
    sys.exit(main())
