"""Two `rag eval` runs of one question set, compared: every figure but the timings, and every item.

    .venv/bin/python -m eval.compare BEFORE_OUT AFTER_OUT

For a change meant to keep behaviour (a refactoring), run `rag eval --out` before and after on the
same machine and compare: it prints each metric and each item field (answer, status, citations,
hits, confidence, decision features, ...) that differs, and exits 1 when anything does. A field the
second run's records have and the first run's lack, with a null value (a record that grew, e.g. a
citation's `correction`), is not a difference.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# Timings differ run to run; the date and index folder name the run, not its figures.
SKIP = ("ttft", "total_", "timings", "duration_s", "date", "settings.index_dir")


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in d.items():
        if isinstance(value, Mapping):
            out.update(flatten(value, f"{prefix}{key}."))
        else:
            out[f"{prefix}{key}"] = value
    return out


def grown(old: Any, new: Any) -> Any:
    """`new` without the keys, at any depth, that `old` lacks and `new` holds as null."""
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        return {k: grown(old.get(k), v) for k, v in new.items() if k in old or v is not None}
    if isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        return [grown(o, n) for o, n in zip(old, new)]
    return new


def _kept(key: str) -> bool:
    return not any(s in key for s in SKIP)


def differences(before: Path, after: Path) -> list[str]:
    """Lines naming each metric and each item field that differs between the two output folders."""
    a, b = (flatten(json.loads((d / "metrics.json").read_text(encoding="utf-8"))) for d in (before, after))
    lines = [f"metric {k}: {a.get(k)!r} -> {b.get(k)!r}" for k in sorted(set(a) | set(b))
             if _kept(k) and a.get(k) != b.get(k)]
    rows = [{r["id"]: r for r in map(json.loads, (d / "results.jsonl").read_text(encoding="utf-8").splitlines())}
            for d in (before, after)]
    for qid in sorted(set(rows[0]) | set(rows[1])):
        x, y = rows[0].get(qid, {}), rows[1].get(qid, {})
        lines += [f"item {qid} {k}: {str(x.get(k))[:80]!r} -> {str(y.get(k))[:80]!r}"
                  for k in sorted(set(x) | set(y)) if _kept(k) and x.get(k) != grown(x.get(k), y.get(k))]
    return lines


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m eval.compare", description=__doc__.split("\n\n")[0])
    p.add_argument("before", type=Path, help="the `rag eval --out` folder of the first run")
    p.add_argument("after", type=Path, help="the `rag eval --out` folder of the second run")
    args = p.parse_args(argv)
    lines = differences(args.before, args.after)
    print("\n".join(lines) if lines else "identical (timings aside)")
    return 1 if lines else 0


if __name__ == "__main__":
    raise SystemExit(main())
