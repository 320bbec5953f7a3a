"""API edges over real HTTP: malformed bodies, size limits, admission control and what errors reveal."""

from __future__ import annotations

import concurrent.futures as cf
import json
import shutil

import httpx
import pytest
from conftest import corrupt_index

from devtools.testing import LiveServer
from devtools.textmatch import says

QUESTION = "Which body issued an arrest warrant for Milošević?"


def _app(engine, tmp_path, **update):
    from ui.server import create_app

    settings = engine.settings.model_copy(update={"api_token": None, "cors_origins": [],
                                                  "feedback_log": tmp_path / "feedback.jsonl", **update})
    return create_app(engine, settings)


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    with LiveServer(_app(engine, tmp_path_factory.mktemp("edges"), max_body_bytes=4096)) as srv:
        yield srv


@pytest.fixture(scope="module")
def http(server):
    with httpx.Client(base_url=server.url, timeout=300) as client:
        yield client


def _message(r: httpx.Response) -> str:
    data = r.json()
    assert isinstance(data.get("message"), str) and data["message"], data
    return data["message"]


@pytest.mark.parametrize("body, status, phrase", [
    (b'{"question": "\\ud800"}', 422, "lone surrogate"),
    (b'{"question": "ok", "history": [{"question": "\\udfff", "answer": "a"}]}', 422, "history.0.question"),
    (b'{"question": "caf\xe9"}', 400, "UTF-8"),
    (b'\xff\xfe{"question": "x"}', 400, "UTF-8"),
    (b'[' * 2000 + b']' * 2000, 400, "body"),
    (b'{"question": ' + b'[' * 1500 + b']' * 1500 + b'}', 400, "body"),
    (b'{"question": ' + b'[' * 50 + b']' * 50 + b'}', 422, "question"),
    (b'{"question": "x"', 422, "JSON"),
    (b'', 422, "body"),
])
def test_malformed_bodies_get_4xx_with_a_message(http, body, status, phrase):
    for path in ("/api/ask", "/api/ask/stream"):
        r = http.post(path, content=body, headers={"Content-Type": "application/json"})
        assert r.status_code == status, (path, r.status_code, r.text[:300])
        assert says(_message(r), phrase, ignore_case=True)  # a whole word: "body" is not in "somebody"


def test_bodies_over_the_limit_get_413_declared_or_chunked(http):
    big = json.dumps({"question": "x" * 5000}).encode()
    r = http.post("/api/ask", content=big, headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and says(_message(r), "4096")  # the limit, not a part of another number

    def chunks():
        for _ in range(10):
            yield b"x" * 1000

    r = http.post("/api/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert r.status_code == 413 and "RAG_MAX_BODY_BYTES" in _message(r)


def test_unknown_paths_and_methods_have_a_message(http):
    assert http.get("/api/nope").status_code == 404 and _message(http.get("/api/nope"))
    r = http.get("/api/ask")
    assert r.status_code == 405 and _message(r)


def test_no_absolute_server_paths_in_health_or_hits(http, engine):
    health = http.get("/api/health")
    assert health.status_code == 200
    index_dir = str(engine.index_dir.resolve())
    assert index_dir not in health.text and not health.json()["index"].startswith("/")
    r = http.post("/api/ask", json={"question": QUESTION})
    assert r.status_code == 200
    for hit in r.json()["hits"]:
        assert not str(hit["metadata"].get("source", "")).startswith("/"), hit["metadata"]
    assert "/tmp/" not in r.text and str(engine.index_dir) not in r.text


def test_a_broken_index_says_the_archive_is_unavailable_without_details(engine, embedder, tmp_path):
    from rag.pipeline import Engine

    index_dir = tmp_path / "index"
    shutil.copytree(engine.index_dir, index_dir)
    corrupt_index(index_dir)
    broken = Engine(engine.settings.model_copy(update={"index_dir": index_dir}), embedder=embedder)
    with LiveServer(_app(broken, tmp_path)) as srv, httpx.Client(base_url=srv.url, timeout=60) as client:
        for r in (client.post("/api/ask", json={"question": QUESTION}), client.get("/api/health")):
            assert r.status_code == 503
            assert "archive is unavailable" in _message(r)
            assert str(tmp_path) not in r.text and "rag ingest" not in r.text
        stream = client.post("/api/ask/stream", json={"question": QUESTION}).text
        assert "archive is unavailable" in stream and str(tmp_path) not in stream
    from rag.errors import IndexError_
    from ui.errors import public_error  # what the chat page, the API and MCP tell a reader

    assert public_error(IndexError_(f"the index file {index_dir}/CURRENT is corrupt")) == \
        "the archive is unavailable right now; please try again later"


def _events(text: str) -> list[tuple[str, str]]:
    out = []
    for block in text.strip().split("\n\n"):
        lines = block.split("\n")
        name = next((line[7:] for line in lines if line.startswith("event: ")), "")
        data = "\n".join(line[6:] for line in lines if line.startswith("data: "))
        out.append((name, data))
    return out


@pytest.mark.slow
def test_a_full_queue_sheds_with_503_and_health_stays_answered(engine, tmp_path):
    app = _app(engine, tmp_path, answer_workers=1, answer_queue_size=2, stream_heartbeat_s=0.2)
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, timeout=300) as client:
        questions = [f"{QUESTION} ({i})" for i in range(8)]
        with cf.ThreadPoolExecutor(len(questions) + 1) as pool:
            asks = [pool.submit(client.post, "/api/ask", json={"question": q}) for q in questions]
            health = [client.get("/api/health") for _ in range(5)]
            results = [f.result() for f in asks]
        codes = sorted(r.status_code for r in results)
        assert set(codes) == {200, 503} and codes.count(200) >= 3, codes
        for r, q in zip(results, questions):
            if r.status_code == 200:
                assert r.json()["question"] == q
            else:
                assert int(r.headers["Retry-After"]) >= 1 and "busy" in _message(r)
        assert all(h.status_code == 200 for h in health)
        assert "queue" in health[0].json()

        # A stream that must wait says so at once, with its place in line, and keeps the line alive.
        with cf.ThreadPoolExecutor(2) as pool:
            first = pool.submit(client.post, "/api/ask", json={"question": QUESTION + " again"})
            with client.stream("POST", "/api/ask/stream", json={"question": QUESTION}) as resp:
                text = "".join(resp.iter_text())
            first.result()
        events = _events(text)
        assert events[0][0] == "queued" and "position" in json.loads(events[0][1])
        assert events[-1][0] == "answer"


def test_api_docs_load_without_a_cdn(http):
    page = http.get("/api/docs")
    assert page.status_code == 200
    assert "cdn." not in page.text and "https://" not in page.text.replace("https://swagger.io", "")
    for asset in ("/api/docs-assets/swagger-ui-bundle.js", "/api/docs-assets/swagger-ui.css"):
        assert asset in page.text
        r = http.get(asset)
        assert r.status_code == 200 and len(r.content) > 100_000


@pytest.mark.slow
def test_the_openai_endpoint_waits_in_the_same_line(engine, tmp_path):
    """/v1/chat/completions is admitted by the JSON API's queue: beyond it, an OpenAI error with 503."""
    app = _app(engine, tmp_path, answer_workers=1, answer_queue_size=1, stream_heartbeat_s=0.2)

    def chat(client: httpx.Client, i: int, stream: bool = False) -> httpx.Response:
        body = {"model": "newsroom-rag", "stream": stream,
                "messages": [{"role": "user", "content": f"{QUESTION} ({i})"}]}
        return client.post("/v1/chat/completions", json=body)

    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, timeout=300) as client:
        with cf.ThreadPoolExecutor(7) as pool:
            asks = [pool.submit(client.post, "/api/ask", json={"question": f"{QUESTION} [{i}]"}) for i in range(3)]
            chats = [pool.submit(chat, client, i) for i in range(3)]
            health = client.get("/api/health")
            results = [f.result() for f in asks + chats]
        codes = [r.status_code for r in results]
        assert set(codes) == {200, 503}, codes  # one answering and one waiting at a time: the rest shed
        for r in results[3:]:
            if r.status_code == 503:
                error = r.json()["error"]
                assert error["code"] == "queue_full" and "busy" in error["message"]
                assert int(r.headers["Retry-After"]) >= 1
            else:
                assert r.json()["choices"][0]["message"]["content"]
        assert health.status_code == 200

        # Alone in line, a stream is answered in full through the pool's worker.
        resp = chat(client, 99, stream=True)
        assert resp.status_code == 200 and resp.text.rstrip().endswith("data: [DONE]")
        assert '"finish_reason": "stop"' in resp.text or '"finish_reason":"stop"' in resp.text
