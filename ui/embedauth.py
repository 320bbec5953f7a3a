"""Short-lived embed tokens for public pages, and the session cookie they are exchanged for.

The long-lived API token (RAG_API_TOKEN) stays on servers. A newsroom's backend (or `rag
embed-token`) mints an embed token: HMAC-SHA256 over {origin, expiry, nonce}, keyed with
RAG_EMBED_SECRET (default: a key derived from the API token). The host page puts it in the iframe
src (`/chat/?embed=<token>`); the server checks it, sets a session cookie (origin and expiry, signed
with the same key: it holds nothing secret) and redirects to the same page without the token, so
the token leaves no trace in the page URL, the cookie or the page's own requests.

    token  = b64url(json{"o": origin, "exp": seconds, "n": nonce, "d": desks}) "." b64url(hmac("embed." + payload))
    cookie = b64url(json{"o": origin, "exp": seconds, "d": desks})            "." b64url(hmac("session." + payload))

`desks` (issue 25): the desks whose articles the page's reader may see; absent or empty is the
public principal. They are signed, so a page cannot add one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.config import Settings

SESSION_COOKIE = "rag_session"
EMBED_PARAM = "embed"
_EMBED, _SESSION = b"embed.", b"session."


class EmbedTokenError(ValueError):
    """An embed token or session cookie that is malformed, forged, expired or for another origin."""


@dataclass(frozen=True)
class Claims:
    origin: str
    expires: int
    desks: tuple[str, ...] = ()


def signing_key(settings: Settings) -> bytes | None:
    """The HMAC key: RAG_EMBED_SECRET, else derived from RAG_API_TOKEN; None when neither is set."""
    if settings.embed_secret:
        return hashlib.sha256(b"rag-embed-secret\0" + settings.embed_secret.encode()).digest()
    token = settings.api_token
    if token:
        # A derived key: knowing embed tokens or cookies tells nothing about the API token.
        return hmac.new(token.encode(), b"rag-embed-key-v1", hashlib.sha256).digest()
    return None


def normalise_origin(origin: str) -> str:
    origin = origin.strip().rstrip("/")
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise EmbedTokenError(f"an origin is scheme://host[:port], e.g. https://www.example.org; got {origin!r}")
    return f"{scheme}://{rest.lower()}"


def mint_embed_token(key: bytes, origin: str, ttl_s: int = 600, *, now: float | None = None,
                     desks: Sequence[str] = ()) -> str:
    """A token that lets a page on `origin` open the chat for `ttl_s` seconds (to start a session),
    seeing what members of `desks` may see."""
    now = time.time() if now is None else now
    payload = {"o": normalise_origin(origin), "exp": int(now + ttl_s), "n": secrets.token_urlsafe(9)}
    names = sorted({d.strip() for d in desks if d.strip()})
    if names:
        payload["d"] = names
    return _sign(key, _EMBED, payload)


def verify_embed_token(key: bytes, token: str, *, now: float | None = None) -> Claims:
    return _verify(key, _EMBED, token, now)


def session_cookie_value(key: bytes, claims: Claims, ttl_s: int, *, now: float | None = None) -> str:
    now = time.time() if now is None else now
    payload: dict[str, Any] = {"o": claims.origin, "exp": int(now + ttl_s)}
    if claims.desks:
        payload["d"] = list(claims.desks)
    return _sign(key, _SESSION, payload)


def verify_session(key: bytes, value: str, *, now: float | None = None) -> Claims:
    return _verify(key, _SESSION, value, now)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _sign(key: bytes, purpose: bytes, payload: dict[str, Any]) -> str:
    body = _b64(json.dumps(payload, separators=(",", ":"), sort_keys=True).encode())
    return body + "." + _b64(hmac.new(key, purpose + body.encode(), hashlib.sha256).digest())


def _verify(key: bytes, purpose: bytes, token: str, now: float | None) -> Claims:
    body, sep, sig = (token or "").partition(".")
    if not sep or not body or not sig or len(token) > 2048:
        raise EmbedTokenError("malformed token")
    want = hmac.new(key, purpose + body.encode("ascii", "replace"), hashlib.sha256).digest()
    try:
        given = _unb64(sig)
    except (ValueError, TypeError) as exc:
        raise EmbedTokenError("malformed token") from exc
    if not hmac.compare_digest(want, given):
        raise EmbedTokenError("invalid signature")
    try:
        payload = json.loads(_unb64(body))
        desks = payload.get("d") or []
        if not isinstance(desks, list) or not all(isinstance(d, str) for d in desks):
            raise TypeError("desks")
        claims = Claims(str(payload["o"]), int(payload["exp"]), tuple(desks))
    except (ValueError, KeyError, TypeError) as exc:
        raise EmbedTokenError("malformed token") from exc
    if claims.expires < (time.time() if now is None else now):
        raise EmbedTokenError("expired")
    return claims
