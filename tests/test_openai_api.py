"""The OpenAI-compatible endpoint driven by the real `openai` SDK against a started server (real
engine and models over the demo corpus, bearer token on)."""

from __future__ import annotations

import httpx
import pytest

from devtools.testing import LiveServer

TOKEN = "openai-t0ken-for-tests"
MODEL = "newsroom-rag"
WARRANT = "Which body issued an arrest warrant for Milošević?"
RIVAL = "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?"
FOLLOW_UP = "What share of the first-round vote did he get?"
UNANSWERABLE = "What did Putin and Clinton discuss about Chechnya?"
CITATION_KEYS = {"n", "doc_id", "chunk_id", "title", "quote", "start", "end", "url", "date", "publisher"}


@pytest.fixture(scope="module")
def server(engine, tmp_path_factory):
    from ui.server import create_app

    settings = engine.settings.model_copy(update={
        "api_token": TOKEN, "cors_origins": [], "feedback_log": tmp_path_factory.mktemp("oa") / "feedback.jsonl"})
    with LiveServer(create_app(engine, settings)) as srv:
        yield srv


@pytest.fixture(scope="module")
def client(server):
    from openai import OpenAI

    with OpenAI(base_url=f"{server.url}/v1", api_key=TOKEN, timeout=300, max_retries=0) as c:
        yield c


def _citations(obj) -> list[dict]:
    return (obj.model_extra or {}).get("citations")


def _check_cited(content: str, citations: list[dict]) -> None:
    assert citations, content
    for c in citations:
        assert set(c) >= CITATION_KEYS
        assert c["quote"] and 0 <= c["start"] < c["end"]
        assert f"[{c['n']}]" in content  # marker in the answer and in the Sources list
        assert c["quote"] in content.split("Sources:", 1)[1]
    answer, sources = content.split("\n\nSources:\n", 1)
    assert any(f"[{c['n']}]" in answer for c in citations)
    assert sources.startswith(f"[{citations[0]['n']}] {citations[0]['title']}")


def test_models_lists_the_archive(client):
    assert [m.id for m in client.models.list()] == [MODEL]


def test_completion_with_structured_citations(client, engine):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WARRANT}])
    assert r.object == "chat.completion" and r.choices[0].finish_reason == "stop"
    content = r.choices[0].message.content
    assert r.choices[0].message.role == "assistant"
    citations = _citations(r)
    _check_cited(content, citations)
    assert r.model_extra["refused"] is False
    # The same checked answer the engine gives the JSON API.
    assert content.startswith(engine.ask(WARRANT).text.rstrip())
    # Offsets locate the quote in the article.
    from ui.archive import article

    for c in citations:
        title, text, _ = article(engine, c["doc_id"])
        assert title == c["title"] and text[c["start"]:c["end"]] == c["quote"]


def test_streamed_completion_ends_with_citations(client):
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "system", "content": "Answer in French."},
                               {"role": "user", "content": WARRANT}], stream=True))
    assert all(ch.object == "chat.completion.chunk" for ch in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    content = "".join(ch.choices[0].delta.content or "" for ch in chunks)
    assert len([ch for ch in chunks if ch.choices[0].delta.content]) > 1  # streamed in pieces
    last = chunks[-1]
    assert last.choices[0].finish_reason == "stop"
    assert all(_citations(ch) is None for ch in chunks[:-1])
    _check_cited(content, _citations(last))
    assert last.model_extra["refused"] is False


def test_follow_up_uses_the_earlier_messages(client, engine):
    from rag.records import Turn

    first = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": RIVAL}])
    earlier = first.choices[0].message.content  # with its Sources list, as a chat client sends it back
    assert "Sources:" in earlier
    r = client.chat.completions.create(model=MODEL, messages=[
        {"role": "user", "content": RIVAL}, {"role": "assistant", "content": earlier},
        {"role": "user", "content": [{"type": "text", "text": FOLLOW_UP}]}])
    standalone = r.model_extra["standalone_question"]
    assert standalone != FOLLOW_UP and " he " not in f" {standalone} "
    # The engine saw the earlier turn as the engine wrote it: the answer without the Sources list.
    answer = earlier.split("\n\nSources:\n", 1)[0]
    assert standalone == engine.standalone_question(FOLLOW_UP, [Turn(RIVAL, answer)])
    assert r.choices[0].message.content.strip()


def test_refusal_is_a_normal_completion(client):
    r = client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": UNANSWERABLE}])
    assert r.choices[0].finish_reason == "stop"
    assert r.model_extra["refused"] is True and _citations(r) == []
    assert r.model_extra["status"] in ("uncertain", "not_found")
    assert r.choices[0].message.content.startswith(("No confident answer.", "Not in the archive."))
    assert "Sources:" not in r.choices[0].message.content
    chunks = list(client.chat.completions.create(
        model=MODEL, messages=[{"role": "user", "content": UNANSWERABLE}], stream=True))
    assert chunks[-1].model_extra["refused"] is True and _citations(chunks[-1]) == []
    assert "".join(ch.choices[0].delta.content or "" for ch in chunks).startswith(
        ("No confident answer.", "Not in the archive."))


def test_token_and_bad_requests(server, client):
    import openai

    with openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0) as bad:
        with pytest.raises(openai.PermissionDeniedError):
            bad.models.list()
    assert httpx.get(f"{server.url}/v1/models").status_code == 401
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": WARRANT}])
    with pytest.raises(openai.BadRequestError, match="must not be empty"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "  "}])
    with pytest.raises(openai.BadRequestError, match="must be from the user"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": WARRANT},
                                                              {"role": "assistant", "content": "x"}])
    with pytest.raises(openai.BadRequestError, match="too long"):
        client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "y" * 1001}])
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=MODEL, messages=[])
    r = httpx.post(f"{server.url}/v1/chat/completions", content=b"{nope",
                   headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
