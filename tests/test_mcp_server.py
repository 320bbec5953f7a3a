"""`rag mcp` driven by the official MCP client SDK, over stdio and over streamable HTTP: the real
command in a subprocess, the real engine and models over the demo corpus."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from conftest import MODEL_CACHE

from devtools.testing import free_port

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
WARRANT = "Which body issued an arrest warrant for Milošević?"
RIVAL = "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?"
FOLLOW_UP = "What share of the first-round vote did he get?"
UNANSWERABLE = "What did Putin and Clinton discuss about Chechnya?"
TOKEN = "mcp-t0ken-for-tests"
CITATION_KEYS = {"n", "doc_id", "chunk_id", "title", "quote", "start", "end", "url", "date", "publisher"}


def _env(corpus_index: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                "RAG_INDEX_DIR": str(corpus_index), "RAG_MODEL_CACHE": str(MODEL_CACHE), **extra})
    return env


async def _check_session(client) -> None:
    """What every transport must give: the tools, a cited answer whose offsets hold in the article
    resource, and a refusal that says it is one."""
    tools = {t.name: t for t in (await client.list_tools()).tools}
    assert set(tools) >= {"search_archive", "ask_archive"}
    assert {"query", "k", "filters"} <= set(tools["search_archive"].input_schema["properties"])
    assert {"question", "history"} <= set(tools["ask_archive"].input_schema["properties"])
    assert tools["ask_archive"].output_schema and "citations" in tools["ask_archive"].output_schema["properties"]

    result = await client.call_tool("ask_archive", {"question": WARRANT})
    assert not result.is_error, result.content
    data = result.structured_content
    assert data["refused"] is False and data["question"] == WARRANT
    assert data["citations"], data
    for c in data["citations"]:
        assert set(c) >= CITATION_KEYS
        assert c["quote"] and 0 <= c["start"] < c["end"] and c["title"]
    first = data["citations"][0]
    assert f"[{first['n']}]" in data["answer"]
    assert "Tribunal" in first["quote"] or "tribunal" in data["answer"].lower()

    # The article is a resource, and the citation's offsets point at its quote in that text.
    listed = {str(r.uri): r for r in (await client.list_resources()).resources}
    uri = f"archive://articles/{first['doc_id']}"
    assert uri in listed and listed[uri].title == first["title"]
    text = (await client.read_resource(uri)).contents[0].text
    assert text[first["start"]:first["end"]] == first["quote"]

    refusal = await client.call_tool("ask_archive", {"question": UNANSWERABLE})
    assert not refusal.is_error
    assert refusal.structured_content["refused"] is True
    assert refusal.structured_content["citations"] == []
    assert refusal.structured_content["status"] in ("uncertain", "not_found")
    assert refusal.structured_content["answer"].startswith(("No confident answer.", "Not in the archive."))

    # The JSON API's checks: an empty question is refused with the same message.
    bad = await client.call_tool("ask_archive", {"question": "   "})
    assert bad.is_error and "question must not be empty" in bad.content[0].text


def test_stdio_lists_tools_answers_with_citations_and_refuses(corpus_index, tmp_path):
    from mcp import Client, StdioServerParameters

    # Started from a folder of its own, as a desktop client does: only the env paths locate things.
    params = StdioServerParameters(command=sys.executable, args=["-m", "rag.cli", "mcp"], cwd=str(tmp_path),
                                   env=_env(corpus_index))

    async def main() -> None:
        async with Client(params, read_timeout_seconds=300) as client:
            await _check_session(client)
            # A follow-up: the history makes "he" Koštunica before retrieval.
            first = (await client.call_tool("ask_archive", {"question": RIVAL})).structured_content
            follow = await client.call_tool("ask_archive", {"question": FOLLOW_UP, "history": [
                {"question": RIVAL, "answer": first["answer"]}]})
            data = follow.structured_content
            assert data["standalone_question"] != FOLLOW_UP
            assert " he " not in f" {data['standalone_question']} "

    asyncio.run(main())


@pytest.fixture(scope="module")
def http_server(corpus_index, tmp_path_factory):
    """`rag mcp --transport http` with a token, in its own process."""
    port = free_port()
    log = tmp_path_factory.mktemp("mcp-http") / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "mcp", "--transport", "http", "--port", str(port)],
            cwd=str(ROOT), env=_env(corpus_index, RAG_API_TOKEN=TOKEN), stdout=out, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 180
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"rag mcp exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError as exc:
            if time.monotonic() > deadline:
                proc.kill()
                raise TimeoutError(f"rag mcp did not listen on {port}:\n{log.read_text()[-3000:]}") from exc
            time.sleep(0.2)
    yield f"http://127.0.0.1:{port}/mcp"
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


def test_http_needs_the_token(http_server):
    init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "0"}}}
    accept = {"Accept": "application/json, text/event-stream"}
    r = httpx.post(http_server, json=init, headers=accept, timeout=30)
    assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
    r = httpx.post(http_server, json=init, headers={**accept, "Authorization": "Bearer nope"}, timeout=30)
    assert r.status_code == 403 and r.json()["detail"] == "invalid token"


def test_http_lists_tools_searches_answers_and_refuses(http_server):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> None:
        async with httpx2.AsyncClient(headers={"Authorization": f"Bearer {TOKEN}"},
                                      timeout=httpx2.Timeout(30, read=300)) as http:
            async with Client(streamable_http_client(http_server, http_client=http),
                              read_timeout_seconds=300) as client:
                await _check_session(client)
                found = await client.call_tool("search_archive", {
                    "query": "arrest warrant", "k": 2, "filters": {"where": {"publisher": "Meduza"}}})
                hits = found.structured_content["hits"]
                assert 1 <= len(hits) <= 2 and all(h["publisher"] == "Meduza" for h in hits)
                assert any("warrant" in h["text"] for h in hits)
                wrong = await client.call_tool("search_archive", {"query": "x", "filters": {"since": "2020-13-01"}})
                assert wrong.is_error and "YYYY-MM-DD" in wrong.content[0].text
            # A client of the handshake era (initialize, 2025 protocol versions) is served too.
            async with Client(streamable_http_client(http_server, http_client=http), mode="legacy",
                              read_timeout_seconds=300) as old:
                assert not old.protocol_version.startswith("2026")
                assert {t.name for t in (await old.list_tools()).tools} >= {"search_archive", "ask_archive"}
                found = await old.call_tool("search_archive", {"query": "arrest warrant", "k": 1})
                assert found.structured_content["hits"][0]["doc_id"]

    asyncio.run(main())
