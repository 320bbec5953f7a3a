"""/metrics: Prometheus' text format, read back by prometheus_client's own parser, over real HTTP
with the real Engine; and the metrics module's rules (fixed labels, one registry per app)."""

from __future__ import annotations

import os
import threading

import httpx
import pytest

from devtools.testing import LiveServer

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TOKEN = "metrics-t0ken-for-tests"
WRONG = "not-the-t0ken-at-all"
URL_SECRET = "s3cret-in-a-url"
QUESTION = "Which body issued an arrest warrant for Milošević?"
SERIES = {  # family name (as the parser names it) -> type
    "rag_requests": "counter", "rag_request_seconds": "histogram", "rag_answers": "counter",
    "rag_refusals": "counter", "rag_stage_seconds": "histogram", "rag_queue_depth": "gauge",
    "rag_access_denials": "counter",
}


def _families(text: str) -> dict:
    from prometheus_client.parser import text_string_to_metric_families

    return {f.name: f for f in text_string_to_metric_families(text)}


def _value(families: dict, sample_name: str, **labels: str) -> float:
    """The sum of the samples of that name whose labels include `labels`."""
    family = sample_name.removesuffix("_total").removesuffix("_count").removesuffix("_sum")
    return sum(s.value for s in families[family].samples
               if s.name == sample_name and all(s.labels.get(k) == v for k, v in labels.items()))


def _chat_client(url: str, **kwargs):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=False, **kwargs)


@pytest.fixture(scope="module")
def scraped(engine, tmp_path_factory):
    """A server with an API token after a few requests: (the /metrics text, the answer, responses)."""
    from ui.server import create_app

    settings = engine.settings.model_copy(update={
        "api_token": TOKEN, "cors_origins": [], "feedback_log": tmp_path_factory.mktemp("metrics") / "f.jsonl"})
    app = create_app(engine, settings)
    ok = {"Authorization": f"Bearer {TOKEN}"}
    with LiveServer(app) as srv, httpx.Client(base_url=srv.url, timeout=300) as http:
        codes = {
            "missing": http.post("/api/ask", json={"question": QUESTION}).status_code,
            "wrong": http.post("/api/ask", json={"question": QUESTION},
                               headers={"Authorization": f"Bearer {WRONG}"}).status_code,
            "metrics_without_token": http.get("/metrics").status_code,
        }
        answer = http.post("/api/ask", json={"question": QUESTION, "k": 3}, headers=ok)
        assert answer.status_code == 200, answer.text
        chat = _chat_client(f"{srv.url}/chat/", headers=ok).predict(QUESTION, 3, "hybrid", api_name="/ask")
        assert chat["status"] == "answered"
        http.get(f"/api/health?token={URL_SECRET}", headers=ok)
        http.get(f"/nowhere/{URL_SECRET}", headers=ok)
        r = http.get("/metrics", headers=ok)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"  # what every Prometheus reads
    return r.text, answer.json(), codes, app


def test_metrics_needs_the_token_and_denials_are_answered(scraped):
    _, _, codes, _ = scraped
    assert codes == {"missing": 401, "wrong": 403, "metrics_without_token": 401}


def test_metrics_holds_every_series_and_the_counts_moved(scraped):
    text, answer, _, app = scraped
    families = _families(text)
    assert {name: families[name].type for name in SERIES if name in families} == SERIES

    assert answer["status"] == "answered"
    assert _value(families, "rag_answers_total", status="answered") >= 2  # the API's and the chat page's
    assert _value(families, "rag_refusals_total") == _value(families, "rag_answers_total", status="uncertain") \
        + _value(families, "rag_answers_total", status="not_found")
    for stage in ("retrieve", "first_token", "total"):
        assert _value(families, "rag_stage_seconds_count", stage=stage) >= 1, stage
    assert _value(families, "rag_stage_seconds_sum", stage="total") > 0
    assert _value(families, "rag_queue_depth") == 0  # nothing waits once the answer is in

    assert _value(families, "rag_access_denials_total", reason="missing_token") >= 2  # /api/ask, /metrics
    assert _value(families, "rag_access_denials_total", reason="invalid_token") >= 1
    for reason in ("embargo", "desk", "retracted"):  # present from the start, at 0 here
        assert any(s.labels.get("reason") == reason for s in families["rag_access_denials"].samples), reason

    assert _value(families, "rag_requests_total", path="/api/ask", method="POST", status="200") >= 1
    assert _value(families, "rag_requests_total", path="/api/ask", method="POST", status="401") >= 1
    assert _value(families, "rag_requests_total", path="/api/ask", method="POST", status="403") >= 1
    assert _value(families, "rag_requests_total", path="/metrics", method="GET", status="401") >= 1
    assert _value(families, "rag_requests_total", path="/api/health", method="GET", status="200") >= 1
    assert _value(families, "rag_requests_total", path="other", method="GET", status="404") >= 1
    assert _value(families, "rag_request_seconds_count", path="/api/ask") >= 3
    assert app.state.metrics.registry is not None


def test_no_label_carries_a_token_a_url_or_a_document(scraped):
    from ui import metrics

    text, answer, _, _ = scraped
    families = _families(text)
    allowed = {
        "path": metrics.ROUTES | set(metrics.PREFIXES) | {metrics.OTHER},
        "method": metrics.METHODS | {metrics.OTHER},
        "status": {*metrics.STATUSES, metrics.OTHER} | {str(code) for code in range(100, 600)},
        "stage": set(metrics.STAGES.values()),
        "reason": {*metrics.DENIAL_REASONS, metrics.OTHER},
        "le": None,  # histogram buckets: numbers
    }
    for family in families.values():
        for sample in family.samples:
            for key, value in sample.labels.items():
                assert key in allowed, (sample.name, key)
                if allowed[key] is None:
                    float(value)
                else:
                    assert value in allowed[key], (sample.name, key, value)
    secrets = [TOKEN, WRONG, URL_SECRET, QUESTION]
    for hit in answer["hits"]:
        secrets += [hit["doc_id"], hit["title"], hit["text"][:40]]
    for c in answer["citations"]:
        secrets += [c["quote"][:40]]
    for secret in secrets:
        assert secret not in text, secret


def test_each_app_has_its_own_registry_and_denials_reach_the_bound_one():
    from ui.admission import AnswerPool
    from ui.metrics import Metrics, count_denial

    a, b = Metrics(), Metrics()
    token = a.bind()
    try:
        count_denial("embargo")
        # The answer pool's workers count in the context of the request that queued them.
        pool = AnswerPool(1, 1, 30)
        ticket = pool.admit()
        pool.run(ticket, lambda t: count_denial("desk")).result(timeout=10)
        pool.shutdown()
    finally:
        a.unbind(token)
    count_denial("retracted")  # no app bound here: the process's installed one, if any, not `a`
    fa, fb = _families(a.exposition()[0].decode()), _families(b.exposition()[0].decode())
    assert _value(fa, "rag_access_denials_total", reason="embargo") == 1
    assert _value(fa, "rag_access_denials_total", reason="desk") == 1
    assert _value(fa, "rag_access_denials_total", reason="retracted") == 0
    assert _value(fb, "rag_access_denials_total") == 0


def test_labels_stay_in_their_fixed_sets():
    from ui.metrics import Metrics, route_of

    assert route_of("/api/ask") == "/api/ask"
    assert route_of("/chat/gradio_api/queue/join") == "/chat"
    assert route_of("/api/docs-assets/swagger-ui.css") == "/api/docs-assets"
    assert route_of("/api/ask/") == "other"
    assert route_of("/api/docs") == "/api/docs"
    assert route_of("/v1/chat/completions/../../secret") == "other"
    assert route_of("/articles/doc-1234") == "other"

    m = Metrics()
    m.denial("doc-1234 'Secret title'")  # a caller's mistake: counted, but not as a label
    # A distinctive embed token: "abc" could be a part of any word of the exposition's help texts.
    m.request("/embed/index.html?embed=embed-t0ken-in-a-url", "BREW", 418, 0.01)
    m.answer({"status": "answered", "refused": False, "timings": {"retrieve_s": 0.1, "total_s": float("nan")}})
    m.answer({"status": "something new", "refused": True, "timings": {}})
    queue = [3]
    m.watch_queue(lambda: queue[0])
    text = m.exposition()[0].decode()
    families = _families(text)
    assert "doc-1234" not in text and "Secret" not in text and "BREW" not in text and "embed-t0ken" not in text
    assert _value(families, "rag_access_denials_total", reason="other") == 1
    assert _value(families, "rag_requests_total", path="/embed", method="other", status="418") == 1
    assert _value(families, "rag_answers_total", status="answered") == 1
    assert _value(families, "rag_answers_total", status="other") == 1
    assert _value(families, "rag_refusals_total") == 1
    assert _value(families, "rag_stage_seconds_count", stage="retrieve") == 1
    assert _value(families, "rag_stage_seconds_count", stage="total") == 0  # NaN is not a time
    assert _value(families, "rag_queue_depth") == 3
    body, content_type = m.exposition("application/openmetrics-text; version=1.0.0,text/plain;q=0.5")
    assert content_type.startswith("application/openmetrics-text") and body.rstrip().endswith(b"# EOF")


def test_streamed_responses_stay_streamed_through_the_middleware():
    """RequestMetrics passes each body part on as it comes, and times the request to its end."""
    import asyncio

    from ui.metrics import Metrics, RequestMetrics

    sent: list[dict] = []
    release = threading.Event()

    async def app(scope, receive, send):
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"first", "more_body": True})
        assert [m.get("body") for m in sent if m["type"] == "http.response.body"] == [b"first"]
        release.set()
        await send({"type": "http.response.body", "body": b"last", "more_body": False})

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    m = Metrics()
    scope = {"type": "http", "path": "/api/ask/stream", "method": "POST", "headers": []}
    asyncio.run(RequestMetrics(app, m)(scope, receive, send))
    assert release.is_set()
    families = _families(m.exposition()[0].decode())
    assert _value(families, "rag_requests_total", path="/api/ask/stream", method="POST", status="200") == 1
    assert _value(families, "rag_request_seconds_count", path="/api/ask/stream") == 1
