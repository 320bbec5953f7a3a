"""Issue 25 in a real browser: the chat page (opened with an embed token) and the script-tag widget
(on another origin) show a desk's fact to a reader whose embed token carries that desk, and nothing
of it to one whose token does not: not in the answer, the sources panel, the example questions or
anywhere else on the page. Needs Debian's chromium and chromium-driver; skipped otherwise."""

from __future__ import annotations

import pytest
from test_access import BEFORE, RULES, Clock, leaked, says
from test_access_leaks import ORIGIN
from test_ui_browser import _ask, _open_chat, _wait_answers
from test_widget_browser import HostPage, _final
from test_widget_browser import _ask as _ask_widget

from devtools.testing import LiveServer, browser_missing

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]

TOKEN = "browser-access-api-token"
LEDGER = "What did the Halvaris Shipping ledger list as missing?"
BRIDGE = "What will the Vellmark Bridge be renamed?"


@pytest.fixture(scope="module")
def archive(tmp_path_factory, embedder):
    from conftest import CORPUS

    from rag.config import load_settings
    from rag.pipeline import Engine

    root = tmp_path_factory.mktemp("browser-access")
    settings = load_settings(index_dir=root / "index", api_token=TOKEN, cors_origins=[ORIGIN],
                             feedback_log=root / "feedback.jsonl")
    engine = Engine(settings, embedder=embedder, clock=Clock(BEFORE))
    assert not engine.ingest([RULES, CORPUS]).problems
    return engine, settings


def _embed(settings, origin: str, desks: list[str]) -> str:
    from ui.embedauth import mint_embed_token, signing_key

    return mint_embed_token(signing_key(settings), origin, 600, desks=desks)


@pytest.mark.parametrize("desks", [[], ["investigations"]], ids=["public", "investigations"])
def test_chat_page_shows_a_desk_fact_only_to_its_desk(archive, browser, desks):
    from ui.server import create_app

    engine, settings = archive
    with LiveServer(create_app(engine, settings)) as srv:
        d = browser(1280, 900)
        _open_chat(d, f"{srv.url}/chat/?embed={_embed(settings, ORIGIN, desks)}")
        _ask(d, LEDGER)
        _wait_answers(d, 1)
        _ask(d, BRIDGE)
        _wait_answers(d, 2)
        page = d.execute_script("return document.body.innerText")
    assert not leaked(page, "bridge", "mayor") and says(page, "9,406,152") == bool(desks), page[:2000]
    assert bool(leaked(page, "ledger")) == bool(desks)


@pytest.mark.parametrize("desks", [[], ["investigations"]], ids=["public", "investigations"])
def test_widget_shows_a_desk_fact_only_to_its_desk(archive, browser, desks):
    from ui.server import create_app

    engine, settings = archive
    host = HostPage()
    settings = settings.model_copy(update={"cors_origins": [host.url]})
    with LiveServer(create_app(engine, settings)) as srv, host.server:
        host.body = (f'<script src="{srv.url}/widget.js" data-archive-url="{srv.url}" '
                     f'data-token="{_embed(settings, host.url, desks)}" async></script>')
        d = browser(1280, 900)
        d.get(f"{host.url}/")
        _ask_widget(d, LEDGER)
        _final(d)
        text = d.execute_script("return document.querySelector('archive-chat').shadowRoot.textContent")
    assert not leaked(text, "bridge", "mayor") and says(text, "9,406,152") == bool(desks), text[:2000]
