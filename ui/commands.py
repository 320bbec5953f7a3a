"""The `rag` commands that ui/ brings (plugins, see rag/cli.py): serve, mcp and embed-token."""

from __future__ import annotations

import argparse
from pathlib import Path

from rag.cli import Command


def _serve(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rag serve", description=SERVE.help)
    p.add_argument("--host")
    p.add_argument("--port", type=int)
    p.add_argument("--index", type=Path)
    args = p.parse_args(argv)
    from rag.config import load_settings

    from .server import run

    run(load_settings(index_dir=args.index, host=args.host, port=args.port))
    return 0


def _mcp(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rag mcp", description=MCP.help)
    p.add_argument("--transport", choices=["stdio", "http"], default="stdio",
                   help="stdio (default; the client starts this command) or streamable HTTP")
    p.add_argument("--host", help="HTTP only (default RAG_HOST, 127.0.0.1)")
    p.add_argument("--port", type=int, help="HTTP only (default RAG_MCP_PORT, 7861)")
    p.add_argument("--path", default="/mcp", help="HTTP only: the endpoint path (default /mcp)")
    p.add_argument("--index", type=Path)
    p.add_argument("--as", dest="as_desks", action="append", default=[], metavar="DESK",
                   help="stdio only: the client sees what a member of DESK may see (repeat for several; "
                        "trusted local use); default: the public principal. Over HTTP tokens decide")
    args = p.parse_args(argv)
    from rag.config import load_settings
    from rag.records import Principal

    from .mcp_server import run

    run(load_settings(index_dir=args.index, host=args.host, mcp_port=args.port), transport=args.transport,
        path=args.path, principal=Principal.trusted("mcp", args.as_desks))
    return 0


def _embed_token(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rag embed-token", description=EMBED_TOKEN.help)
    p.add_argument("--origin", required=True, help="the host page's origin, e.g. https://www.example.org")
    p.add_argument("--ttl", type=int, help="seconds the token may be used to open the page (default 600)")
    p.add_argument("--desk", action="append", default=[], metavar="DESK",
                   help="the page's readers see what members of DESK may see (repeat for several; default: "
                        "what the public sees)")
    args = p.parse_args(argv)
    from rag.config import load_settings
    from rag.errors import ConfigError

    from .embedauth import EmbedTokenError, mint_embed_token, normalise_origin, signing_key

    settings = load_settings()
    key = signing_key(settings)
    if key is None:
        raise ConfigError("embed tokens need RAG_API_TOKEN (or RAG_EMBED_SECRET) set, as on the server")
    try:
        origin = normalise_origin(args.origin)
    except EmbedTokenError as exc:
        raise ConfigError(f"--origin: {exc}") from exc
    if origin not in {o.rstrip("/").lower() for o in settings.cors_origins}:
        raise ConfigError(f"{origin} is not in RAG_CORS_ORIGINS, so the server would refuse the token")
    print(mint_embed_token(key, origin, args.ttl or settings.embed_token_ttl_s, desks=args.desk))
    return 0


def _token_hash(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="rag token-hash", description=TOKEN_HASH.help + ". The token is read from "
                                "standard input (so that it stays out of the shell history); paste the printed "
                                "line into the [[token]] entry of RAG_ACCESS_FILE.")
    p.parse_args(argv)
    import sys

    from .principals import token_hash

    token = sys.stdin.readline().strip()
    if not token:
        print("rag token-hash: no token on standard input", file=sys.stderr)
        return 2
    print(f'sha256 = "{token_hash(token)}"')
    return 0


SERVE = Command("start the web app: chat page, embed and JSON API", _serve)
MCP = Command("serve the archive to MCP clients (assistants, agents) over stdio or HTTP", _mcp)
EMBED_TOKEN = Command("mint a short-lived token for embedding the chat on a page", _embed_token)
TOKEN_HASH = Command("print the hash of an API token, for the access file (RAG_ACCESS_FILE)", _token_hash)
