"""The access rules under a long fuzz run: devtools/access_fuzz.py's random callers and requests,
a thousand by default, against a live app over the restricted fixture and the demo corpus.

    PYTHONPATH=. .venv/bin/python -m eval.bench.access_fuzz [--requests 1000] [--seed 25]

Not a test (tests/test_access_fuzz.py sends a few hundred of the same requests): it prints the
machine, the statuses by count, the requests per path, the time taken, and every leak, server
error or invalid credential that was not refused; it exits 1 if there was any. Figures in
eval/ACCESS.md.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from eval.bench.machine import machine


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m eval.bench.access_fuzz", description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=25)
    args = parser.parse_args(argv)

    from devtools.access_fuzz import fuzz_server, run
    from rag.config import load_settings, offline_environment
    from rag.models import make_embedder

    offline_environment()
    settings = load_settings()
    embedder = make_embedder(settings.embedder_backend, settings.embedder, cache_dir=settings.model_cache)
    print("# Access fuzz run\n")
    print("\n".join(machine()))
    with tempfile.TemporaryDirectory(prefix="access-fuzz-") as root, fuzz_server(Path(root), embedder) as (url, s):
        got = run(url, s, args.requests, seed=args.seed)
    print(f"\n{got.requests} requests (seed {args.seed}) in {got.seconds:.0f} s")
    print(f"- statuses: {dict(sorted(got.statuses.items()))}")
    print(f"- by path: {dict(sorted(got.by_path.items()))}")
    print(f"- leaks: {len(got.leaks)}; server errors: {len(got.errors)}; invalid credentials not refused: "
          f"{len(got.unrefused)}")
    for row in (got.leaks + got.errors + got.unrefused)[:20]:
        print(f"  - {row}")
    return 1 if got.leaks or got.errors or got.unrefused else 0


if __name__ == "__main__":
    sys.exit(main())
