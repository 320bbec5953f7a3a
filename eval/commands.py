"""The `rag` commands that eval/ brings (plugins, see rag/cli.py): eval and bench."""

from __future__ import annotations

from rag.cli import Command


def _eval(argv: list[str]) -> int:
    from .runner import main

    return main(argv)


def _bench(argv: list[str]) -> int:
    from .bench import main

    return main(argv)


EVAL = Command("run the evaluation set and write a report (rag eval --help)", _eval)
BENCH = Command("run the speed benchmark suite (rag bench --help)", _bench)
