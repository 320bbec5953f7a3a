"""The evaluation gate: the limits of eval/thresholds.toml and the pass/fail check of `rag eval --check`.

A thresholds file holds top-level `name = minimum` / `max_name = maximum` keys (metric names of
metrics.json "overall") and optional tables `[category.<name>]` with the same keys for one category.
"""

from __future__ import annotations

import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from eval.paths import EVAL_DIR
from eval.scoring import METRIC_NAMES
from rag.errors import ConfigError

DEFAULT_THRESHOLDS = EVAL_DIR / "thresholds.toml"
OVERALL = "overall"


@dataclass(frozen=True)
class Check:
    """One limit of a thresholds file against the figure a run measured (None: not measurable)."""

    metric: str
    scope: str  # OVERALL or a category
    kind: str  # "minimum" or "maximum"
    limit: float  # as written in the file (an int stays an int in the report)
    measured: float | None

    @property
    def label(self) -> str:
        return self.metric if self.scope == OVERALL else f"{self.metric} [{self.scope}]"

    @property
    def failed(self) -> bool:
        if self.measured is None:
            return False
        return self.measured < self.limit if self.kind == "minimum" else self.measured > self.limit


def _parse_key(key: str) -> tuple[str, str]:
    """(metric name, kind) of a thresholds key: `max_` marks a maximum."""
    return (key[4:], "maximum") if key.startswith("max_") else (key, "minimum")


def _top_level(thresholds: Mapping[str, Any]) -> dict[str, Any]:
    """The limits of the whole set: every key but the [category.*] tables."""
    return {k: v for k, v in thresholds.items() if k != "category"}


def load_thresholds(path: Path) -> dict[str, Any]:
    """Read a thresholds file (see the module's docstring). Unknown names are an error."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no such thresholds file: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from exc

    def check(table: Mapping[str, Any], where: str) -> None:
        for key, value in table.items():
            if _parse_key(key)[0] not in METRIC_NAMES:
                raise ConfigError(f"{path}: unknown metric {key!r}{where}; known: {', '.join(METRIC_NAMES)}")
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise ConfigError(f"{path}: {key}{where} must be a number, got {value!r}")

    check(_top_level(data), "")
    for cat, table in (data.get("category") or {}).items():
        if not isinstance(table, dict):
            raise ConfigError(f"{path}: [category.{cat}] must be a table")
        check(table, f" in [category.{cat}]")
    return data


def checks(metrics: Mapping[str, Any], thresholds: Mapping[str, Any]) -> list[Check]:
    """Every limit of `thresholds` against the figures of a metrics.json object, in file order."""
    by_category = metrics.get("by_category") or {}
    scopes = [(OVERALL, _top_level(thresholds), metrics.get("overall"))]
    scopes += [(cat, table, by_category.get(cat)) for cat, table in (thresholds.get("category") or {}).items()]
    out = []
    for scope, table, figures in scopes:
        for key, limit in table.items():
            name, kind = _parse_key(key)
            out.append(Check(name, scope, kind, limit, (figures or {}).get(name)))
    return out


def check_thresholds(metrics: Mapping[str, Any], thresholds: Mapping[str, Any]) -> tuple[list[Check], list[str]]:
    """(failures, skipped): the checks on the wrong side of their limit, and the labels of those
    whose figure this set cannot measure (None)."""
    done = checks(metrics, thresholds)
    return [c for c in done if c.failed], [c.label for c in done if c.measured is None]


def gate_lines(failures: Sequence[Check]) -> list[str]:
    out = []
    for f in failures:
        op = "below minimum" if f.kind == "minimum" else "above maximum"
        out.append(f"{f.label}: measured {f.measured:.4f}, {op} {f.limit:.4f}")
    return out
