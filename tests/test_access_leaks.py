"""Issue 25, acceptance 1: a leak test per front end. An embargoed, a desk-only and a retracted
article each hold a made-up fact; no front end puts that fact or its title into any answer, hit,
citation, closest passage, example question, follow-up, log line or error for a principal without
rights, and each answers it once the clock passes the embargo or the desk's token is used.

One live server (chat page, widget path, /api, /v1), the MCP endpoint over streamable HTTP and the
`rag` command, all over one engine whose clock the test moves; real models throughout, the reader
the small SmolLM2 (as in the fuzz run): who sees what is decided in the store, before any model
reads, and a fact a principal may see reaches it in the answer or in the closest passages alike.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys

import httpx
import lxml.html
import pytest
from conftest import CORPUS, MODEL_CACHE, ROOT
from test_access import AFTER, BEFORE, RULES, SECRETS, Clock, leaked, received, says

from devtools.testing import LiveServer

pytestmark = pytest.mark.slow

API_TOKEN = "api-token-for-leak-tests"
DESK_TOKEN = "investigations-desk-token"
ORIGIN = "https://news.example"
READER = "smollm2-135m"
ASK = {  # a question per restricted article, the answer its rights should get, and who has them
    "bridge": ("What will the Vellmark Bridge be renamed?", "Quorrin"),
    "ledger": ("What did the Halvaris Shipping ledger list as missing?", "9,406,152"),
    "mayor": ("Why did the mayor of Ostrevia resign?", None),  # retracted: nobody
}


class Captured(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.lines.append(self.format(record))
        except Exception:
            self.lines.append(str(record.msg))


@pytest.fixture(scope="module")
def world(tmp_path_factory, embedder):
    from rag.config import load_settings
    from rag.pipeline import Engine
    from ui.embedauth import mint_embed_token, signing_key
    from ui.mcp_server import build, http_app
    from ui.principals import token_hash
    from ui.server import create_app

    root = tmp_path_factory.mktemp("leaks")
    access = root / "access.toml"
    access.write_text(f'[[token]]\nname = "investigations"\nsha256 = "{token_hash(DESK_TOKEN)}"\n'
                      'desks = ["investigations"]\n', encoding="utf-8")
    qa = root / "examples.jsonl"  # example questions about every article: only public ones may be shown
    qa.write_text("\n".join(json.dumps({"question": q, "answers": [a], "answerable": True, "evidence": [e]})
                            for q, a, e in [
        ("What will the Vellmark Bridge be renamed?", "Quorrin Span", "renamed the Quorrin Span"),
        ("What did the Halvaris Shipping ledger list as missing?", "9,406,152 crates", "listed 9,406,152 crates"),
        ("Why did the mayor of Ostrevia resign?", "the Zentaro affair", "because of the Zentaro affair"),
        ("What did the Brannock Mill fire destroy?", "12 houses", "destroyed 12 houses"),
    ]), encoding="utf-8")
    clock = Clock(BEFORE)
    settings = load_settings(index_dir=root / "index", api_token=API_TOKEN, access_file=access,
                             cors_origins=[ORIGIN], examples_qa=qa, feedback_log=root / "feedback.jsonl",
                             generator_model=READER)
    engine = Engine(settings, embedder=embedder, clock=clock)
    assert not engine.ingest([RULES, CORPUS]).problems
    logs = Captured()
    logging.getLogger().addHandler(logs)
    level = logging.getLogger().level
    logging.getLogger().setLevel(logging.INFO)
    key = signing_key(settings)
    embeds = {"public": mint_embed_token(key, ORIGIN, 3600), "desk": mint_embed_token(key, ORIGIN, 3600,
                                                                                       desks=["investigations"])}
    with LiveServer(create_app(engine, settings)) as web, LiveServer(http_app(build(engine), settings)) as mcp:
        yield {"engine": engine, "clock": clock, "web": web.url, "mcp": mcp.url + "/mcp", "embeds": embeds,
               "logs": logs, "settings": settings, "root": root}
    logging.getLogger().removeHandler(logs)
    logging.getLogger().setLevel(level)


def _bearer(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


# -- the front ends, each as `ask(world, question, credentials) -> everything the caller got back` --
def api_ask(w, q, token):
    r = httpx.post(w["web"] + "/api/ask", json={"question": q}, headers=_bearer(token), timeout=300)
    assert r.status_code == 200, r.text
    return r.text


def api_stream(w, q, token):
    with httpx.stream("POST", w["web"] + "/api/ask/stream", json={"question": q}, headers=_bearer(token),
                      timeout=300) as r:
        assert r.status_code == 200
        return "".join(r.iter_text())


def api_search(w, q, token):
    r = httpx.post(w["web"] + "/api/search", json={"query": q, "k": 10}, headers=_bearer(token), timeout=120)
    assert r.status_code == 200, r.text
    return r.text


def v1(w, q, token, stream=False):
    body = {"model": "newsroom-rag", "messages": [{"role": "user", "content": q}], "stream": stream}
    r = httpx.post(w["web"] + "/v1/chat/completions", json=body, headers=_bearer(token), timeout=300)
    assert r.status_code == 200, r.text
    return r.text


def v1_stream(w, q, token):
    return v1(w, q, token, stream=True)


def widget(w, q, token):
    """What the script-tag widget sends: /api/ask with an embed token, from its page's origin."""
    embed = w["embeds"]["desk" if token == DESK_TOKEN else "public"]
    r = httpx.post(w["web"] + "/api/ask", json={"question": q}, timeout=300,
                   headers={"Authorization": f"Bearer {embed}", "Origin": ORIGIN})
    assert r.status_code == 200, r.text
    return r.text


def chat_page(w, q, token):
    """The chat page's own endpoint (gradio_client), in a session opened with an embed token's cookie."""
    from gradio_client import Client

    embed = w["embeds"]["desk" if token == DESK_TOKEN else "public"]
    with httpx.Client(follow_redirects=False) as http:
        r = http.get(w["web"] + f"/chat/?embed={embed}")
        assert r.status_code == 303
        cookie = r.headers["set-cookie"].split(";")[0]
    client = Client(w["web"] + "/chat/", verbose=False, analytics_enabled=False, download_files=False,
                    headers={"Cookie": cookie})
    first = client.predict(q, api_name="/ask")
    follow = client.predict("And what happened after that?", api_name="/ask")  # a follow-up in the same session
    # What the page shows: its text outside scripts, and the strings of its config (the example
    # questions are there). Not the raw page: its scripts and build hashes are nobody's reading.
    html = lxml.html.fromstring(httpx.get(w["web"] + "/chat/", headers={"Cookie": cookie}, timeout=60).text)
    for node in html.xpath("//script|//style"):
        node.drop_tree()
    config = httpx.get(w["web"] + "/chat/config", headers={"Cookie": cookie}, timeout=60).text
    return "\n".join([received(json.dumps([first, follow])), html.text_content(), received(config)])


def mcp_tools(w, q, token):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def main() -> str:
        async with httpx2.AsyncClient(headers=_bearer(token or API_TOKEN), timeout=httpx2.Timeout(30, read=300)) as h:
            async with Client(streamable_http_client(w["mcp"], http_client=h), read_timeout_seconds=300) as client:
                asked = await client.call_tool("ask_archive", {"question": q})
                found = await client.call_tool("search_archive", {"query": q, "k": 10})
                listed = await client.list_resources()
                out = [asked.structured_content, found.structured_content, [r.model_dump(mode="json")
                                                                            for r in listed.resources]]
                for doc in SECRETS:  # reading a hidden article says what a missing one says
                    try:
                        read = await client.read_resource(f"archive://articles/{doc}")
                        out.append([c.model_dump(mode="json") for c in read.contents])
                    except Exception as exc:
                        out.append(str(exc))
                return json.dumps(out)

    return asyncio.run(main())


def cli(w, q, token):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAG_")}
    env.update({"PYTHONPATH": str(ROOT), "RAG_INDEX_DIR": str(w["settings"].index_dir),
                "RAG_MODEL_CACHE": str(MODEL_CACHE),
                "RAG_ANSWER_THRESHOLD": os.environ["RAG_ANSWER_THRESHOLD"], "RAG_GENERATOR_MODEL": READER})
    desk = ["--as", "investigations"] if token == DESK_TOKEN else []
    out = []
    for args in (["ask", q, "--json"], ["search", q, "-k", "10", "--json"]):
        done = subprocess.run([sys.executable, "-m", "rag.cli", *args, *desk], env=env, capture_output=True,
                              text=True, timeout=600)
        assert done.returncode == 0, done.stderr
        out.append(received(done.stdout) + "\n" + done.stderr)
    return "\n".join(out)


FRONT_ENDS = [api_ask, api_stream, api_search, v1, v1_stream, widget, chat_page, mcp_tools, cli]


@pytest.mark.parametrize("front", FRONT_ENDS, ids=lambda f: f.__name__)
def test_no_front_end_leaks_and_each_answers_with_rights(world, front):
    clock = world["clock"]
    clock.now = BEFORE
    def got(question, token):
        return received(front(world, question, token))

    for doc, (question, _) in ASK.items():
        text = got(question, API_TOKEN)  # the API token is the public principal
        assert not leaked(text, "bridge", "ledger", "mayor"), (front.__name__, doc, leaked(text, *SECRETS))
    desk = got(ASK["ledger"][0], DESK_TOKEN)
    assert says(desk, ASK["ledger"][1]), (front.__name__, desk[:2000])
    for doc in ("bridge", "mayor"):
        text = got(ASK[doc][0], DESK_TOKEN)
        assert not leaked(text, "bridge", "mayor"), (front.__name__, doc)
    if front is cli:
        return  # a separate process reads the real clock, before the fixture's embargo (2099)
    clock.now = AFTER
    try:
        lifted = got(ASK["bridge"][0], API_TOKEN)
        assert says(lifted, ASK["bridge"][1]), (front.__name__, lifted[:2000])
        assert not leaked(got(ASK["mayor"][0], DESK_TOKEN), "mayor")
    finally:
        clock.now = BEFORE


def test_no_log_line_holds_a_restricted_fact(world):
    # After the front ends above ran (same module, in order): nothing they logged quotes an article.
    text = "\n".join(world["logs"].lines)
    assert not leaked(text, *SECRETS)


def test_errors_and_listings_say_nothing_of_hidden_articles(world):
    web = world["web"]
    r = httpx.post(web + "/api/search", json={"query": "ledger", "filters": {"where": {"doc_id": "ledger"}}},
                   headers=_bearer(API_TOKEN), timeout=60)
    assert r.status_code == 200 and r.json()["hits"] == []
    r = httpx.post(web + "/api/search", json={"query": "ledger", "filters": {"where": {"doc_id": "ledger"}}},
                   headers=_bearer(DESK_TOKEN), timeout=60)
    assert [h["doc_id"] for h in r.json()["hits"]] == ["ledger"]
    health = httpx.get(web + "/api/health", headers=_bearer(DESK_TOKEN), timeout=60).json()
    assert health["documents"] == len(world["engine"].retriever.store.document_ids()) - 3  # the public count
    r = httpx.post(web + "/api/search", json={"query": "x"}, headers=_bearer("made-up-token"), timeout=60)
    assert r.status_code == 403 and not leaked(received(r.text), *SECRETS)
    assert "Vellmark" not in r.text and DESK_TOKEN not in "\n".join(world["logs"].lines)
