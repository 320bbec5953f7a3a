"""What a reader or client is told when something fails, the same on every face (chat page, JSON API,
OpenAI endpoint, MCP): a plain sentence; paths and repair commands stay in the server log."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rag.errors import ConfigError, IndexError_, ModelError

ARCHIVE_UNAVAILABLE = "the archive is unavailable right now; please try again later"
MODEL_UNAVAILABLE = "the answering model is unavailable right now; please try again later"


def error_status(exc: Exception) -> int:
    """The HTTP status of an engine error: 400 for a bad setting, 503 for a missing index or model."""
    if isinstance(exc, ConfigError):
        return 400
    if isinstance(exc, (IndexError_, ModelError)):
        return 503
    return 500


def public_error(exc: Exception) -> str:
    if isinstance(exc, IndexError_):
        return ARCHIVE_UNAVAILABLE
    if isinstance(exc, ModelError):
        return MODEL_UNAVAILABLE
    if isinstance(exc, ConfigError):
        return str(exc)
    return "internal error while answering; see the server log"


def problems(errors: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """pydantic's validation errors without the inputs they echo: {"loc", "msg", "type"} each, the
    location without FastAPI's leading "body"."""
    out = []
    for e in errors:
        loc = [str(p) for p in e.get("loc", ()) if p != "body"]
        msg = str(e.get("msg", "invalid value")).removeprefix("Value error, ")
        out.append({"loc": loc, "msg": msg, "type": e.get("type")})
    return out


def problems_message(found: Iterable[Mapping[str, Any]]) -> str:
    """One line for people: "question: question must not be empty; k: ..."."""
    return "; ".join(f"{'.'.join(p['loc']) or 'body'}: {p['msg']}" for p in found) or "invalid request"


def validation_message(errors: Iterable[Mapping[str, Any]]) -> str:
    """The JSON API's 422 message for these validation errors (also what MCP and /v1 say)."""
    return problems_message(problems(errors))
