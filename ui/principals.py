"""Who a request is (issue 25): its credentials become a rag.records.Principal, the desks whose
articles it may see. The engine hides everything else inside the store.

- No credentials: the public principal (where the server asks for none).
- `Authorization: Bearer <RAG_API_TOKEN>`: the public principal too; the API token admits a
  caller, it grants no desk.
- `Authorization: Bearer <token>` of the access file (RAG_ACCESS_FILE): that token's desks.
- An embed token (the widget) or the session cookie it became (the chat page): the desks it was
  minted with (`rag embed-token --desk`).

The access file holds only hashes of the tokens, so reading it (or a backup of it) gives none away:

    [[token]]
    name = "investigations"          # shown in logs and metrics instead of the token
    sha256 = "9f86d0…"                # `rag token-hash` prints it for a token
    desks = ["investigations", "legal"]
"""

from __future__ import annotations

import hashlib
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.errors import ConfigError
from rag.records import PUBLIC, Principal

from . import edges, embedauth

if TYPE_CHECKING:
    from rag.config import Settings

SCOPE_KEY = "rag.principal"  # where TokenAuth leaves a request's principal in its ASGI scope
_HEX = frozenset("0123456789abcdef")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def load_access_file(path: Path) -> dict[str, Principal]:
    """Token hash -> principal. A bad file names itself, the entry and the field."""
    try:
        data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        raise ConfigError(f"cannot read the access file {path} (RAG_ACCESS_FILE): {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"the access file {path} is not valid TOML: {exc}") from exc
    entries = data.get("token", [])
    if not isinstance(entries, list):
        raise ConfigError(f"{path}: 'token' must be an array of tables ([[token]]), got {type(entries).__name__}")
    out: dict[str, Principal] = {}
    for i, entry in enumerate(entries, start=1):
        where = f"{path}: token {i}"
        if not isinstance(entry, dict):
            raise ConfigError(f"{where}: must be a table")
        unknown = set(entry) - {"name", "sha256", "desks"}
        if unknown:
            raise ConfigError(f"{where}: unknown field {sorted(unknown)[0]!r} (expected name, sha256, desks)")
        name, digest, desks = entry.get("name"), entry.get("sha256"), entry.get("desks")
        if not isinstance(name, str) or not name.strip():
            raise ConfigError(f"{where}: field 'name' must be non-empty text, got {name!r}")
        if not isinstance(digest, str) or len(digest) != 64 or not set(digest.lower()) <= _HEX:
            raise ConfigError(f"{where} ({name}): field 'sha256' must be 64 hex digits (`rag token-hash`), "
                              f"got {digest!r}")
        if not isinstance(desks, list) or not desks or not all(isinstance(d, str) and d.strip() for d in desks):
            raise ConfigError(f"{where} ({name}): field 'desks' must be a non-empty list of desk names, got {desks!r}")
        if digest.lower() in out:
            raise ConfigError(f"{where} ({name}): the same sha256 as token {out[digest.lower()].name!r}")
        out[digest.lower()] = Principal.of(name.strip(), desks)
    return out


@dataclass(frozen=True)
class Credentials:
    """A request's principal, or why it has none (`status` 401: missing, 403: invalid)."""

    principal: Principal | None
    status: int = 200
    message: str = ""

    @property
    def denial(self) -> str:
        return "missing_token" if self.status == 401 else "invalid_token"


class Principals:
    """The server's rules for credentials: the API token, the access file's tokens, embed tokens."""

    def __init__(self, settings: Settings, *, origins: list[str] | None = None) -> None:
        self.api_token = settings.api_token or None
        self.tokens = load_access_file(settings.access_file) if settings.access_file else {}
        self.key = embedauth.signing_key(settings)
        self.origins = {o.rstrip("/").lower() for o in (origins if origins is not None else settings.cors_origins)}

    @property
    def required(self) -> bool:
        """Whether the API needs a token (the API token is set): else no token is the public principal."""
        return self.api_token is not None

    @property
    def guarded(self) -> bool:
        return self.api_token is not None or bool(self.tokens)

    def bearer(self, value: str, headers: dict[str, str] | None = None, *, embed: bool = False) -> Principal | None:
        """The principal of a bearer credential; None when it is not a valid one. `embed`: an embed
        token is accepted too (only for asking: the widget), from its own page's origin."""
        if self.api_token is not None and edges.is_token(value, self.api_token):
            return Principal("api-token")
        found = self.tokens.get(token_hash(value))
        if found is not None:
            return found
        if embed and self.key is not None:
            try:
                claims = embedauth.verify_embed_token(self.key, value)
            except embedauth.EmbedTokenError:
                return None
            origin = (headers or {}).get("origin", "").rstrip("/").lower()
            if claims.origin in self.origins and origin == claims.origin:
                return of_claims(claims)
        return None

    def session(self, value: str) -> Principal:
        """The principal of a chat page's session cookie (raises EmbedTokenError when it is not valid)."""
        if self.key is None:
            raise embedauth.EmbedTokenError("cannot be checked: no signing key")
        return of_claims(embedauth.verify_session(self.key, value))

    def of_headers(self, headers: dict[str, str], *, embed: bool = False, session: bool = True) -> Credentials:
        """A request's credentials: its bearer token, else (`session`: a page) its session cookie, else none."""
        given = edges.bearer(headers)
        if given is not None:
            found = self.bearer(given, headers, embed=embed)
            return Credentials(found) if found else Credentials(None, 403, "invalid token")
        cookie = edges.cookie(headers, embedauth.SESSION_COOKIE) if session else None
        if cookie and self.key is not None:
            try:
                return Credentials(self.session(cookie))
            except embedauth.EmbedTokenError as exc:
                return Credentials(None, 403, f"session {exc}: open the page with a new embed token")
        if self.required:
            return Credentials(None, 401, edges.MISSING_BEARER)
        return Credentials(PUBLIC)


def of_claims(claims: embedauth.Claims) -> Principal:
    return Principal.of("embed:" + claims.origin, claims.desks) if claims.desks else PUBLIC


def principal_of(scope: dict[str, Any]) -> Principal:
    """The principal TokenAuth found for this request (the public one where nothing checked)."""
    found = scope.get(SCOPE_KEY)
    return found if isinstance(found, Principal) else PUBLIC
