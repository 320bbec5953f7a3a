"""The JSON API over real HTTP: a server on a free 127.0.0.1 port, the real Engine over the corpus."""

from __future__ import annotations

import json

import httpx
import pytest

from devtools.testing import LiveServer
from devtools.textmatch import says

ALLOWED = "http://newsroom.example"
OTHER = "http://elsewhere.example"
TOKEN = "t0ken-for-tests"
QUESTION = "Which body issued an arrest warrant for Milošević?"
CONTRACT_KEYS = {"question", "standalone_question", "answer", "refused", "status", "citations", "closest", "hits",
                 "timings", "confidence", "candidate", "decision", "prompt_tokens", "reply"}
CITATION_KEYS = {"n", "doc_id", "title", "chunk_id", "quote", "start", "end", "date", "correction"}
HIT_KEYS = {"rank", "score", "doc_id", "title", "chunk_id", "start", "end", "text", "metadata"}


def _settings(engine, tmp_path, **update):
    base = {"cors_origins": [ALLOWED], "api_token": None, "feedback_log": tmp_path / "feedback.jsonl"}
    return engine.settings.model_copy(update={**base, **update})


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    from ui.server import create_app

    app = create_app(engine, _settings(engine, tmp_path_factory.mktemp("api")))
    with LiveServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def token_server(engine, tmp_path_factory):
    from ui.server import create_app

    app = create_app(engine, _settings(engine, tmp_path_factory.mktemp("api-token"), api_token=TOKEN))
    with LiveServer(app) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def _check_answer(data: dict) -> None:
    assert set(data) == CONTRACT_KEYS
    for c in data["citations"]:
        assert set(c) == CITATION_KEYS
    for h in data["hits"]:
        assert set(h) == HIT_KEYS
    # What the sources panel relies on: a citation's quote sits at its offsets inside its chunk's hit.
    hits = {h["chunk_id"]: h for h in data["hits"]}
    for c in data["citations"]:
        if c["chunk_id"] in hits:
            h = hits[c["chunk_id"]]
            assert h["text"][c["start"] - h["start"] : c["end"] - h["start"]] == c["quote"]


def test_ask_returns_answer_with_citations(http):
    r = http.post("/api/ask", json={"question": QUESTION, "k": 3})
    assert r.status_code == 200, r.text
    data = r.json()
    _check_answer(data)
    assert data["question"] == QUESTION
    assert not data["refused"]
    assert data["citations"], data
    assert 1 <= len(data["hits"]) <= 3
    assert any(f"[{c['n']}]" in data["answer"] for c in data["citations"])


def test_ask_uses_history(http):
    history = [{"question": "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?",
                "answer": "Vojislav Koštunica [1]."}]
    r = http.post("/api/ask", json={"question": "What share of the first-round vote did he get?",
                                    "history": history, "k": 3})
    assert r.status_code == 200, r.text
    data = r.json()
    _check_answer(data)
    # The follow-up was made standalone from the history before retrieval.
    assert data["standalone_question"] != data["question"]
    assert " he " not in f" {data['standalone_question']} "


def _events(body: str) -> list[tuple[str, str]]:
    events = []
    for block in body.replace("\r\n", "\n").split("\n\n"):
        name, data = "message", []
        for line in block.split("\n"):
            if line.startswith("event:"):
                name = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].removeprefix(" "))
        if data:
            events.append((name, "\n".join(data)))
    return events


def test_stream_sends_tokens_then_answer(server):
    with httpx.Client(base_url=server.url, timeout=300) as client:
        with client.stream("POST", "/api/ask/stream", json={"question": QUESTION, "k": 3}) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            body = "".join(r.iter_text())
    events = _events(body)
    names = [name for name, _ in events]
    assert names.count("answer") == 1 and names[-1] == "answer", names
    # `queued` comes at once (position 0: a worker was free), heartbeats may follow while it drafts.
    assert names[0] == "queued" and json.loads(events[0][1]) == {"position": 0}, names
    assert "token" in names and set(names[1:-1]) <= {"token", "heartbeat", "queued"}, names
    draft = "".join(json.loads(data) for name, data in events if name == "token")
    assert draft.strip()
    data = json.loads(events[-1][1])
    _check_answer(data)
    assert data["question"] == QUESTION and data["citations"]


def test_health(http):
    r = http.get("/api/health")
    assert r.status_code == 200
    data = r.json()
    assert data["status"] == "ok"
    assert data["documents"] == 2 and data["chunks"] > 2
    assert data["embedder"] and data["generator"]


@pytest.mark.parametrize("body, where", [
    ({"question": ""}, "question"),
    ({"question": "   \n\t "}, "question"),
    ({"question": "x" * 1001}, "question"),
    ({}, "question"),
    ({"question": 42}, "question"),
    ({"question": "Who?", "history": "Who was it?"}, "history"),
    ({"question": "Who?", "history": [{"question": "Who?"}]}, "history"),
    ({"question": "Who?", "history": [["Who?", "Kostunica"]]}, "history"),
    ({"question": "Who?", "history": [{"question": "Who?", "answer": "K", "extra": 1}]}, "history"),
    ({"question": "Who?", "k": 0}, "k"),
    ({"question": "Who?", "k": 21}, "k"),
    ({"question": "Who?", "k": "3"}, "k"),
    ({"question": "Who?", "mode": "psychic"}, "mode"),
    ({"question": "Who?", "top_k": 3}, "top_k"),
])
def test_validation_errors_are_422_with_a_message(http, body, where):
    r = http.post("/api/ask", json=body)
    assert r.status_code == 422, r.text
    data = r.json()
    assert says(data["message"], where), data  # a whole word: the field "k" is a letter of most messages
    assert data["detail"] and all("msg" in e for e in data["detail"])


def test_over_long_and_empty_questions_say_why(http):
    assert "must not be empty" in http.post("/api/ask", json={"question": " "}).json()["message"]
    assert "too long" in http.post("/api/ask", json={"question": "y" * 1001}).json()["message"]
    assert http.post("/api/ask", content=b"{not json", headers={"content-type": "application/json"}).status_code == 422


def test_token_required_when_configured(token_server):
    with httpx.Client(base_url=token_server.url, timeout=60) as client:
        r = client.get("/api/health")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert client.get("/api/health", headers={"Authorization": "Bearer nope"}).status_code == 403
        assert client.get("/api/health", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        # A token in the URL is never accepted.
        assert client.get(f"/api/health?token={TOKEN}").status_code == 401
        # Validation still runs behind the token, and only behind it.
        assert client.post("/api/ask", json={"question": ""}).status_code == 401
        r = client.post("/api/ask", json={"question": ""}, headers={"Authorization": f"Bearer {TOKEN}"})
        assert r.status_code == 422


def test_pages_need_an_embed_token_and_never_take_the_api_token_from_a_url(token_server, engine):
    from ui.embedauth import mint_embed_token, signing_key

    key = signing_key(engine.settings.model_copy(update={"api_token": TOKEN}))
    with httpx.Client(base_url=token_server.url, timeout=60) as client:
        assert client.get("/embed/").status_code == 401
        assert client.get("/chat/").status_code == 401
        assert client.get("/chat/config").status_code == 401
        # The long-lived token is not accepted from a URL any more (it would sit in pages and logs).
        assert client.get(f"/embed/?token={TOKEN}").status_code == 401
        assert client.get("/embed/?embed=forged.token").status_code == 403
        expired = mint_embed_token(key, ALLOWED, ttl_s=-5)
        assert "expired" in client.get(f"/embed/?embed={expired}").json()["message"]
        assert client.get(f"/embed/?embed={mint_embed_token(key, OTHER)}").status_code == 403  # not allowed
        good = mint_embed_token(key, ALLOWED)
        assert client.get(f"/embed/?embed={good}", headers={"Referer": f"{OTHER}/page"}).status_code == 403
        r = client.get(f"/embed/?embed={good}&x=1", headers={"Referer": f"{ALLOWED}/article"})
        assert r.status_code == 303 and r.headers["location"] == "/embed/?x=1"
        cookie = r.headers["set-cookie"]
        assert cookie.startswith("rag_session=") and "HttpOnly" in cookie and TOKEN not in cookie
        # The session cookie lets the page and its own requests (Gradio's config, queue, ...) in.
        assert client.get("/embed/").status_code == 200
        assert client.get("/chat/config").status_code == 200
        assert client.get("/api/health").status_code == 401  # ...but not the API
    with httpx.Client(base_url=token_server.url, timeout=60) as client:
        assert client.get("/chat/", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
        client.cookies.set("rag_session", cookie.split(";")[0].split("=", 1)[1][:-3] + "AAA")
        assert client.get("/chat/").status_code == 403  # a tampered cookie


def test_an_embed_token_may_ask_from_its_own_origin_and_nothing_else(token_server, engine):
    """The script-tag widget on a public page carries an embed token, never the API token."""
    from ui.embedauth import mint_embed_token, signing_key

    key = signing_key(engine.settings.model_copy(update={"api_token": TOKEN}))
    good = {"Authorization": f"Bearer {mint_embed_token(key, ALLOWED, ttl_s=3600)}", "Origin": ALLOWED}
    with httpx.Client(base_url=token_server.url, timeout=300) as client:
        r = client.post("/api/ask", json={"question": "When did Milošević die?"}, headers=good)
        assert r.status_code == 200 and "answer" in r.json()
        assert client.post("/api/ask", json={"question": "x"}, headers={**good, "Origin": OTHER}).status_code == 403
        no_origin = {"Authorization": good["Authorization"]}
        assert client.post("/api/ask", json={"question": "x"}, headers=no_origin).status_code == 403
        assert client.get("/api/health", headers=good).status_code == 403  # asking only
        other = {"Authorization": f"Bearer {mint_embed_token(key, OTHER)}", "Origin": OTHER}
        assert client.post("/api/ask", json={"question": "x"}, headers=other).status_code == 403  # not allowed
        expired = {"Authorization": f"Bearer {mint_embed_token(key, ALLOWED, ttl_s=-5)}", "Origin": ALLOWED}
        assert client.post("/api/ask", json={"question": "x"}, headers=expired).status_code == 403


def test_security_headers_limit_framing_to_allowed_origins(http, token_server):
    for r in (http.get("/chat/"), http.get("/api/health"), httpx.get(f"{token_server.url}/chat/")):
        csp = r.headers["content-security-policy"]
        assert f"frame-ancestors 'self' {ALLOWED}" in csp and OTHER not in csp
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["referrer-policy"] == "same-origin"


def test_embed_token_cli_mints_a_token_the_server_accepts(token_server, tmp_path):
    import os
    import subprocess
    import sys

    from conftest import ROOT

    env = {**os.environ, "RAG_API_TOKEN": TOKEN, "RAG_CORS_ORIGINS": json.dumps([ALLOWED])}
    run = lambda *a: subprocess.run([sys.executable, "-m", "rag.cli", "embed-token", *a], cwd=ROOT, env=env,  # noqa: E731
                                    capture_output=True, text=True, timeout=120)
    proc = run("--origin", ALLOWED, "--ttl", "60")
    assert proc.returncode == 0, proc.stderr
    token = proc.stdout.strip()
    assert TOKEN not in token
    with httpx.Client(base_url=token_server.url, timeout=60) as client:
        assert client.get(f"/chat/?embed={token}").status_code == 303
    refused = run("--origin", OTHER)
    assert refused.returncode == 1 and "RAG_CORS_ORIGINS" in refused.stderr


def test_unprotected_server_serves_pages(http):
    assert http.get("/embed/").status_code == 200
    assert http.get("/chat/").status_code == 200
    r = http.get("/", follow_redirects=False)
    assert r.status_code in (302, 307) and r.headers["location"].endswith("/chat/")


def _cors_headers(r: httpx.Response) -> dict[str, str]:
    return {k.lower(): v for k, v in r.headers.items() if k.lower().startswith("access-control-")}


def test_cors_preflight_only_for_allowed_origins(http):
    pre = {"Access-Control-Request-Method": "POST", "Access-Control-Request-Headers": "content-type"}
    ok = http.options("/api/ask", headers={"Origin": ALLOWED, **pre})
    assert ok.status_code in (200, 204)
    assert ok.headers["access-control-allow-origin"] == ALLOWED
    assert "POST" in ok.headers["access-control-allow-methods"]
    assert "content-type" in ok.headers["access-control-allow-headers"].lower()
    bad = http.options("/api/ask", headers={"Origin": OTHER, **pre})
    assert _cors_headers(bad) == {}


def test_cors_simple_requests_only_for_allowed_origins(http, token_server):
    assert http.get("/api/health", headers={"Origin": ALLOWED}).headers["access-control-allow-origin"] == ALLOWED
    assert _cors_headers(http.get("/api/health", headers={"Origin": OTHER})) == {}
    assert _cors_headers(http.get("/api/health")) == {}
    # Gradio's own routes follow the same policy (Gradio would otherwise allow localhost origins).
    assert _cors_headers(http.get("/chat/config", headers={"Origin": "http://localhost:3000"})) == {}
    assert http.get("/chat/config", headers={"Origin": ALLOWED}).headers["access-control-allow-origin"] == ALLOWED
    # An allowed origin can read a 401, so a widget can tell the user why.
    r = httpx.get(f"{token_server.url}/api/health", headers={"Origin": ALLOWED})
    assert r.status_code == 401 and r.headers["access-control-allow-origin"] == ALLOWED
