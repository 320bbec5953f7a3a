"""The chat through gradio_client against a started server: the /ask endpoint and per-session history."""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import pytest

from devtools.testing import LiveServer

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

TOKEN = "gradio-client-token"
RIVAL = "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?"
WARRANT = "Which body issued an arrest warrant for Milošević?"
FOLLOW_UP = "What share of the first-round vote did he get?"


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    from ui.server import create_app

    settings = engine.settings.model_copy(update={
        "api_token": None, "cors_origins": [], "feedback_log": tmp_path_factory.mktemp("fb") / "f.jsonl"})
    with LiveServer(create_app(engine, settings)) as srv:
        yield srv


def _client(url: str, **kwargs):
    from gradio_client import Client

    return Client(url, verbose=False, analytics_enabled=False, download_files=False, **kwargs)


def test_client_asks_and_gets_citations(server):
    client = _client(f"{server.url}/chat/")
    api = client.view_api(return_format="dict", print_info=False)
    assert "/ask" in api["named_endpoints"]
    result = client.predict(WARRANT, api_name="/ask")
    assert result["question"] == WARRANT
    assert not result["refused"]
    assert result["citations"] and result["hits"]
    first = result["citations"][0]
    assert first["title"] and first["quote"] and f"[{first['n']}]" in result["answer"]
    assert result["history"] == [{"question": WARRANT, "answer": result["answer"]}]
    # Options are parameters too.
    few = client.predict(WARRANT, 2, "lexical", api_name="/ask")
    assert len(few["hits"]) <= 2


def test_two_concurrent_sessions_keep_separate_histories(server):
    a, b = _client(f"{server.url}/chat/"), _client(f"{server.url}/chat/")

    def session_a():
        first = a.predict(RIVAL, api_name="/ask")
        second = a.predict(FOLLOW_UP, api_name="/ask")
        return first, second

    def session_b():
        return b.predict(WARRANT, api_name="/ask")

    with ThreadPoolExecutor(2) as pool:
        fa, fb = pool.submit(session_a), pool.submit(session_b)
        (a1, a2), b1 = fa.result(timeout=600), fb.result(timeout=600)

    assert [t["question"] for t in a1["history"]] == [RIVAL]
    assert [t["question"] for t in a2["history"]] == [RIVAL, FOLLOW_UP]
    assert [t["question"] for t in b1["history"]] == [WARRANT]
    # A's follow-up was rewritten from A's own conversation, which B never saw.
    assert a2["standalone_question"] != FOLLOW_UP
    # Clearing one session leaves the other alone.
    a.predict(api_name="/clear")
    assert [t["question"] for t in a.predict(WARRANT, api_name="/ask")["history"]] == [WARRANT]


def test_client_needs_the_token_when_configured(engine, tmp_path):
    from ui.server import create_app

    settings = engine.settings.model_copy(update={
        "api_token": TOKEN, "cors_origins": [], "feedback_log": tmp_path / "f.jsonl"})
    with LiveServer(create_app(engine, settings)) as srv:
        # gradio_client raises what its HTTP layer raises on the 401, which differs by version.
        with pytest.raises(Exception):  # noqa: B017
            _client(f"{srv.url}/chat/")
        client = _client(f"{srv.url}/chat/", headers={"Authorization": f"Bearer {TOKEN}"})
        assert "/ask" in client.view_api(return_format="dict", print_info=False)["named_endpoints"]
        client.predict(api_name="/clear")  # a full queue round trip with the header
