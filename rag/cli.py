"""The `rag` command: ingest, search, ask and chat here; the other commands (serve, mcp and
embed-token from ui/, eval and bench from eval/) are plugins that packages declare under the entry
point group "newsroom_rag.commands" (pyproject.toml), so the engine imports neither front end."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path

from .errors import LoadError, RagError

PLUGIN_GROUP = "newsroom_rag.commands"


@dataclass(frozen=True)
class Command:
    """A plugin command: its one-line help, and its main, which parses its own arguments. Plugin
    modules stay light (heavy imports inside `main`), as `rag --help` loads them all."""

    help: str
    main: Callable[[list[str]], int]


def _plugins() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=PLUGIN_GROUP)}


def _help(ep: EntryPoint) -> str:
    # Listing the commands must not fail because one plugin cannot be loaded: say why instead.
    try:
        return ep.load().help
    except Exception as exc:  # any import error of a plugin's module
        return f"(unavailable: {type(exc).__name__}: {exc})"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        plugins = _plugins()
        if argv[:1] and argv[0] in plugins:  # only the plugin asked for is loaded
            return plugins[argv[0]].load().main(argv[1:]) or 0
        parser = _parser()
        args = parser.parse_args(argv)
        if not getattr(args, "func", None):
            parser.print_help()
            return 2
        return args.func(args) or 0
    except LoadError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except RagError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _engine(args: argparse.Namespace):
    from .config import load_settings
    from .pipeline import Engine

    return Engine(load_settings(index_dir=getattr(args, "index", None)))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="rag", description="Question answering over a news archive.")
    sub = p.add_subparsers(title="commands")

    ing = sub.add_parser("ingest", help="build or update the index from article files")
    ing.add_argument("paths", nargs="*", type=Path, help="files or folders (default: the corpus folder)")
    ing.add_argument("--index", type=Path, help="index folder (default: .rag/index)")
    ing.add_argument("--rebuild", action="store_true",
                     help="rebuild the index from the given paths alone "
                          "(unchanged chunk texts take their vectors from the embedding cache)")
    ing.add_argument("--prune", action="store_true",
                     help="also remove indexed documents that are not in the given paths")
    ing.add_argument("--force", action="store_true",
                     help="let --prune remove more than RAG_PRUNE_MAX_SHARE of the index")
    ing.add_argument("--quiet", action="store_true", help="no progress bar")
    ing.set_defaults(func=_cmd_ingest)

    idx = sub.add_parser("index", help="list the kept index snapshots or roll back to one")
    idx_sub = idx.add_subparsers(title="index commands")
    lst = idx_sub.add_parser("list", help="show the snapshots on disk (the live one is marked *)")
    lst.add_argument("--index", type=Path)
    lst.set_defaults(func=_cmd_index_list)
    rb = idx_sub.add_parser("rollback", help="make an earlier snapshot live (default: the one before)")
    rb.add_argument("snapshot", nargs="?", help="snapshot name from `rag index list`")
    rb.add_argument("--index", type=Path)
    rb.set_defaults(func=_cmd_index_rollback)

    st = sub.add_parser("store", help="the PostgreSQL store (RAG_STORE_URL): migrate it or shard its chunks")
    st_sub = st.add_subparsers(title="store commands")
    mg = st_sub.add_parser("migrate", help="create or upgrade the schema of RAG_STORE_URL")
    mg.set_defaults(func=_cmd_store_migrate)
    sh = st_sub.add_parser("shard", help="make RAG_STORE_URL (an empty database) a coordinator whose chunks are "
                                         "hash-partitioned over these shard databases through postgres_fdw")
    sh.add_argument("shards", nargs="+", metavar="URL", help="postgresql:// URL of each (empty) shard database")
    sh.set_defaults(func=_cmd_store_shard)

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
    _as_desk(se)
    se.set_defaults(func=_cmd_search)

    ask = sub.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("--history", type=Path, help='JSON file: [{"question": ..., "answer": ...}, ...]')
    ask.add_argument("-k", type=int, default=None, help="passages to retrieve (default 5)")
    ask.add_argument("--mode", choices=["dense", "lexical", "hybrid"])
    ask.add_argument("--index", type=Path)
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    _as_desk(ask)
    ask.set_defaults(func=_cmd_ask)

    chat = sub.add_parser("chat", help="interactive chat in the terminal (streams answers)")
    chat.add_argument("-k", type=int, default=None)
    chat.add_argument("--index", type=Path)
    _as_desk(chat)
    chat.set_defaults(func=_cmd_chat)

    for name, ep in _plugins().items():  # serve, mcp, eval, bench, ...: they own their flags
        sub.add_parser(name, help=_help(ep), add_help=False)
    return p


def _as_desk(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--as", dest="as_desks", action="append", default=[], metavar="DESK",
                     help="see what a member of DESK may see (repeat for several desks; trusted local use); "
                          "default: the public principal")


def _principal(args: argparse.Namespace):
    from .records import Principal

    return Principal.trusted("cli", args.as_desks)


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .ingest import NothingToIngest, PruneRefused

    engine = _engine(args)

    def say(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    try:
        report = engine.ingest(args.paths, rebuild=args.rebuild, progress=not args.quiet, prune=args.prune,
                               force=args.force, notify=say)
    except (NothingToIngest, PruneRefused) as exc:
        for problem in exc.report.problems:
            say(f"skipped {problem}")
        raise
    for problem in report.problems:
        say(f"skipped {problem}")
    print(f"ingested {report.summary()}")
    if report.kept_not_given:
        print(f"kept {report.kept_not_given} indexed documents that are not in the given paths (--prune removes them)")
    print(f"index: {report.index_path}")
    return 0


def _cmd_index_list(args: argparse.Namespace) -> int:
    from . import store
    from .config import load_settings

    settings = load_settings(index_dir=args.index)
    index_dir = Path(settings.index_dir)
    snaps = store.list_snapshots(index_dir, settings.embedded_backend)
    if not snaps:
        print(f"no snapshots in {index_dir}; build one with `rag ingest`")
        return 1
    for s in snaps:
        counts = f"{s.documents} documents, {s.chunks} chunks" if s.problem is None else f"unusable: {s.problem}"
        print(f"{'*' if s.live else ' '} {s.name}  {s.created:20}  {counts}")
    return 0


def _store_settings():
    from .config import load_settings
    from .errors import ConfigError

    settings = load_settings()
    if not settings.store_url:
        raise ConfigError("set RAG_STORE_URL=postgresql://user@host:port/database first")
    return settings


def _cmd_store_migrate(args: argparse.Namespace) -> int:
    from .store.postgres import connect, migrate, safe_url

    settings = _store_settings()
    with connect(settings.store_url) as conn:
        version = migrate(conn, dim=_engine(args).embedder.dimension, hnsw_m=settings.pg_hnsw_m,
                          hnsw_ef_construction=settings.pg_hnsw_ef_construction)
    print(f"{safe_url(settings.store_url)}: schema version {version}")
    return 0


def _cmd_store_shard(args: argparse.Namespace) -> int:
    from .store.pg_shards import create_sharded
    from .store.postgres import safe_url

    settings = _store_settings()
    create_sharded(settings.store_url, list(args.shards), dim=_engine(args).embedder.dimension,
                   hnsw_m=settings.pg_hnsw_m, hnsw_ef_construction=settings.pg_hnsw_ef_construction,
                   ef_search=settings.pg_hnsw_ef_search)
    print(f"{safe_url(settings.store_url)}: chunks hash-partitioned over {', '.join(map(safe_url, args.shards))}")
    return 0


def _cmd_index_rollback(args: argparse.Namespace) -> int:
    from . import store
    from .config import load_settings

    settings = load_settings(index_dir=args.index)
    index_dir = Path(settings.index_dir)
    name = store.rollback(index_dir, args.snapshot, settings.embedded_backend)
    print(f"live snapshot: {name} (a running server picks it up on restart)")
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
                         filters=Filters(where or None, args.since, args.until), principal=_principal(args))
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


def _load_history(path: Path | None):
    from .errors import ConfigError
    from .records import Turn

    if path is None:
        return []
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return [Turn(str(t["question"]), str(t["answer"])) for t in data]
    except FileNotFoundError as exc:
        raise LoadError(f"no such history file: {path}") from exc
    except (json.JSONDecodeError, TypeError, KeyError) as exc:
        raise ConfigError(
            f"{path}: history must be a JSON list of {{\"question\": ..., \"answer\": ...}} objects ({exc!r})"
        ) from exc


def _print_answer(answer) -> None:
    print(answer.text)
    if answer.standalone_question != answer.question:
        print(f"\n(understood as: {answer.standalone_question})")
    for c in answer.citations:
        print(f"  [{c.n}] {c.title[:70]} ({c.chunk_id}, chars {c.start}-{c.end})")
        print(textwrap.indent(textwrap.fill(f"“{c.quote}”", 92), "      "))


def _cmd_ask(args: argparse.Namespace) -> int:
    engine = _engine(args)
    answer = engine.ask(args.question, _load_history(args.history), k=args.k, mode=args.mode,
                        principal=_principal(args))
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=1))
    else:
        _print_answer(answer)
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from .records import Draft, Final, Turn

    engine = _engine(args)
    history: list[Turn] = []
    print("Ask about the archive. Empty line or Ctrl-D to quit; 'clear' starts over.")
    while True:
        try:
            question = input("\n> ").strip()
        except EOFError:
            return 0
        if not question:
            return 0
        if question.lower() == "clear":
            history.clear()
            continue
        print("(drafting) ", end="", flush=True)
        final = None
        for event in engine.ask_stream(question, history, k=args.k, principal=_principal(args)):
            match event:
                case Draft(text):
                    print(text, end="", flush=True)
                case Final(answer):
                    final = answer
        print("\n")
        _print_answer(final)
        history.append(Turn(question, final.text))


if __name__ == "__main__":
    sys.exit(main())
