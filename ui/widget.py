"""GET /widget.js: the script-tag chat widget (ui/widget.js), for article pages on other sites.

Public like any static script (the data it fetches is what the token and CORS rules guard). Sent
gzipped to clients that accept it, with an ETag so a page view after the first costs a 304, and
Timing-Allow-Origin so a host page can measure what it transferred.

`python -m ui.widget` prints the widget's size, raw and gzipped.
"""

from __future__ import annotations

import gzip
import hashlib
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import Response

WIDGET_JS = Path(__file__).resolve().parent / "widget.js"
MEDIA_TYPE = "text/javascript; charset=utf-8"


@lru_cache(maxsize=1)
def payload() -> tuple[bytes, bytes, str]:
    """(raw, gzipped, etag) of the widget script, read once per process."""
    raw = WIDGET_JS.read_bytes()
    return raw, gzip.compress(raw, compresslevel=9, mtime=0), '"' + hashlib.sha256(raw).hexdigest()[:20] + '"'


def make_router() -> APIRouter:
    router = APIRouter()

    @router.get("/widget.js", include_in_schema=False)
    def widget_js(request: Request) -> Response:
        raw, packed, etag = payload()
        headers = {"ETag": etag, "Cache-Control": "public, max-age=600", "Vary": "Accept-Encoding",
                   "Timing-Allow-Origin": "*", "X-Content-Type-Options": "nosniff"}
        if etag in request.headers.get("if-none-match", ""):
            return Response(status_code=304, headers=headers)
        if "gzip" in request.headers.get("accept-encoding", "").lower():
            return Response(packed, media_type=MEDIA_TYPE, headers={**headers, "Content-Encoding": "gzip"})
        return Response(raw, media_type=MEDIA_TYPE, headers=headers)

    return router


def main() -> int:
    raw, packed, _ = payload()
    print(f"{WIDGET_JS.name}: {len(raw)} bytes raw, {len(packed)} bytes gzip -9")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
