"""A fitted logistic model stored as JSON: the ranker's (rag/reader.py) and the decision's
(rag/decision.py) share this one record, each naming its features and how to refit it."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar

from .errors import ConfigError


@dataclass(frozen=True)
class LogisticModel:
    weights: Mapping[str, float]
    bias: float
    threshold: float
    info: Mapping[str, object] = field(default_factory=dict)

    FEATURES: ClassVar[tuple[str, ...]] = ()
    KIND: ClassVar[str] = "fitted model"
    REFIT: ClassVar[str] = ""
    PATH: ClassVar[Path | None] = None  # the shipped file

    def probability(self, x: Mapping[str, float]) -> float:
        z = self.bias + sum(self.weights.get(k, 0.0) * v for k, v in x.items())
        return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))

    @classmethod
    def load(cls, path: str | Path | None = None):
        path = Path(path or cls.PATH)
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            model = cls(dict(zip(obj["features"], map(float, obj["weights"]))), float(obj["bias"]),
                        float(obj["threshold"]), obj.get("info", {}))
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{path}: not a {cls.KIND} ({exc!r}); refit with `{cls.REFIT}`") from exc
        unknown = set(model.weights) - set(cls.FEATURES)
        if unknown:
            raise ConfigError(f"{path}: features {sorted(unknown)} are not the {cls.KIND}'s; refit with `{cls.REFIT}`")
        return model

    def save(self, path: str | Path | None = None) -> None:
        path = path or self.PATH
        obj = {"features": list(self.FEATURES), "weights": [self.weights.get(k, 0.0) for k in self.FEATURES],
               "bias": self.bias, "threshold": self.threshold, "info": dict(self.info)}
        Path(path).write_text(json.dumps(obj, indent=1) + "\n", encoding="utf-8")
