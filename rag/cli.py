"""The `rag` command: ingest, search, ask, chat, serve, mcp, eval and bench."""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

from .errors import LoadError, RagError


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["eval"]:  # the runner owns its flags (see eval/runner.py)
        from eval.runner import main as eval_main

        return eval_main(argv[1:])
    if argv[:1] == ["bench"]:  # the benchmark suite owns its flags (see eval/bench.py)
        from eval.bench import main as bench_main

        return bench_main(argv[1:])
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
    ing.add_argument("--rebuild", action="store_true", help="rebuild the index from the given paths alone (unchanged chunk texts take their vectors from the embedding cache)")
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
    se.set_defaults(func=_cmd_search)

    ask = sub.add_parser("ask", help="answer a question with citations")
    ask.add_argument("question")
    ask.add_argument("--history", type=Path, help='JSON file: [{"question": ..., "answer": ...}, ...]')
    ask.add_argument("-k", type=int, default=None, help="passages to retrieve (default 5)")
    ask.add_argument("--mode", choices=["dense", "lexical", "hybrid"])
    ask.add_argument("--index", type=Path)
    ask.add_argument("--json", action="store_true", help="print one JSON object")
    ask.set_defaults(func=_cmd_ask)

    chat = sub.add_parser("chat", help="interactive chat in the terminal (streams answers)")
    chat.add_argument("-k", type=int, default=None)
    chat.add_argument("--index", type=Path)
    chat.set_defaults(func=_cmd_chat)

    serve = sub.add_parser("serve", help="start the web app: chat page, embed and JSON API")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    serve.add_argument("--index", type=Path)
    serve.set_defaults(func=_cmd_serve)

    mcp = sub.add_parser("mcp", help="serve the archive to MCP clients (assistants, agents) over stdio or HTTP")
    mcp.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                     help="stdio (default; the client starts this command) or streamable HTTP")
    mcp.add_argument("--host", help="HTTP only (default RAG_HOST, 127.0.0.1)")
    mcp.add_argument("--port", type=int, help="HTTP only (default RAG_MCP_PORT, 7861)")
    mcp.add_argument("--path", default="/mcp", help="HTTP only: the endpoint path (default /mcp)")
    mcp.add_argument("--index", type=Path)
    mcp.set_defaults(func=_cmd_mcp)
    et = sub.add_parser("embed-token", help="mint a short-lived token for embedding the chat on a page")
    et.add_argument("--origin", required=True, help="the host page's origin, e.g. https://www.example.org")
    et.add_argument("--ttl", type=int, help="seconds the token may be used to open the page (default 600)")
    et.set_defaults(func=_cmd_embed_token)

    sub.add_parser("eval", help="run the evaluation set and write a report (rag eval --help)")
    sub.add_parser("bench", help="run the speed benchmark suite (rag bench --help)")
    return p


def _cmd_ingest(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .ingest import NothingToIngest, PruneRefused, ingest

    settings = load_settings(index_dir=args.index)
    engine = _engine(args)
    say = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    try:
        if settings.store_url:  # PostgreSQL (rag/store/pg_ingest.py): same rules, one transaction per batch
            from .store.pg_ingest import ingest_postgres

            report = ingest_postgres(args.paths or [settings.corpus_dir], url=settings.store_url,
                                     embedder=engine.embedder, chunking=engine.chunking, cache_dir=engine.index_dir,
                                     rebuild=args.rebuild, progress=not args.quiet, prune=args.prune,
                                     force=args.force, max_prune_share=settings.prune_max_share, notify=say,
                                     hnsw_m=settings.pg_hnsw_m, hnsw_ef_construction=settings.pg_hnsw_ef_construction)
        else:
            report = ingest(args.paths or [settings.corpus_dir], index_dir=engine.index_dir,
                            embedder=engine.embedder, chunking=engine.chunking, params=engine.index_params,
                            rebuild=args.rebuild, progress=not args.quiet, prune=args.prune, force=args.force,
                            max_prune_share=settings.prune_max_share, keep_snapshots=settings.keep_snapshots,
                            notify=say, backend=settings.embedded_backend)
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


def _store_settings():  # noqa: ANN202
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


def _load_history(path: Path | None):  # noqa: ANN202
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


def _print_answer(answer) -> None:  # noqa: ANN001
    print(answer.text)
    if answer.standalone_question != answer.question:
        print(f"\n(understood as: {answer.standalone_question})")
    for c in answer.citations:
        print(f"  [{c.n}] {c.title[:70]} ({c.chunk_id}, chars {c.start}-{c.end})")
        print(textwrap.indent(textwrap.fill(f"“{c.quote}”", 92), "      "))


def _cmd_ask(args: argparse.Namespace) -> int:
    engine = _engine(args)
    answer = engine.ask(args.question, _load_history(args.history), k=args.k, mode=args.mode)
    if args.json:
        print(json.dumps(answer.to_json(), ensure_ascii=False, indent=1))
    else:
        _print_answer(answer)
    return 0


def _cmd_chat(args: argparse.Namespace) -> int:
    from .records import Answer, Turn

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
        for item in engine.ask_stream(question, history, k=args.k):
            if isinstance(item, Answer):
                final = item
            else:
                print(item, end="", flush=True)
        print("\n")
        _print_answer(final)
        history.append(Turn(question, final.text))


def _cmd_embed_token(args: argparse.Namespace) -> int:
    from .config import load_settings
    from .errors import ConfigError

    settings = load_settings()
    from ui.embedauth import EmbedTokenError, mint_embed_token, normalise_origin, signing_key

    key = signing_key(settings)
    if key is None:
        raise ConfigError("embed tokens need RAG_API_TOKEN (or RAG_EMBED_SECRET) set, as on the server")
    try:
        origin = normalise_origin(args.origin)
    except EmbedTokenError as exc:
        raise ConfigError(f"--origin: {exc}") from exc
    if origin not in {o.rstrip("/").lower() for o in settings.cors_origins}:
        raise ConfigError(f"{origin} is not in RAG_CORS_ORIGINS, so the server would refuse the token")
    print(mint_embed_token(key, origin, args.ttl or settings.embed_token_ttl_s))
    return 0


def _cmd_serve(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings(index_dir=args.index, host=args.host, port=args.port)
    from ui.server import run

    run(settings)
    return 0


def _cmd_mcp(args: argparse.Namespace) -> int:
    from .config import load_settings

    settings = load_settings(index_dir=args.index, host=args.host, mcp_port=args.port)
    from ui.mcp_server import run

    run(settings, transport=args.transport, path=args.path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
