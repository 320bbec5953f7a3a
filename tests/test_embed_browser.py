"""Acceptance 4 of issue 14 in headless Chromium: embed tokens, frame-ancestors, no API token in sight.

A host page on an allowed origin embeds the chat with a short-lived embed token and gets answers; a
host page on an origin that is not allowed is refused by the browser (CSP frame-ancestors), even
with a valid session cookie in the browser; the API token appears in no page, URL, cookie or log line.
"""

from __future__ import annotations

import io
import logging

import pytest
from test_ui_browser import WARRANT, _ask, _wait, _wait_answers

from devtools.testing import LiveServer, browser_missing

pytestmark = [
    pytest.mark.browser,
    pytest.mark.slow,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]
TOKEN = "sEcReT-api-token-7f3a9c"


def _host(chat: dict[str, str]) -> LiveServer:
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    def page(request):
        return HTMLResponse(
            '<!doctype html><html><head><meta charset="utf-8"><title>Host</title></head><body>'
            '<h1>Host article</h1><iframe id="chat" style="width:400px;height:800px" '
            f'src="{chat["src"]}"></iframe></body></html>')

    return LiveServer(Starlette(routes=[Route("/", page)]))


def test_embed_token_on_allowed_origin_answers_and_other_origins_are_refused(engine, tmp_path):
    from selenium.webdriver.common.by import By

    from devtools.testing import chrome
    from ui.embedauth import mint_embed_token, signing_key
    from ui.server import create_app

    chat: dict[str, str] = {}
    allowed, other = _host(chat), _host(chat)
    settings = engine.settings.model_copy(update={"api_token": TOKEN, "cors_origins": [allowed.url],
                                                  "feedback_log": tmp_path / "feedback.jsonl"})
    log = io.StringIO()
    handler = logging.StreamHandler(log)
    handler.setFormatter(logging.Formatter("%(name)s %(message)s"))
    server = LiveServer(create_app(engine, settings))
    access = logging.getLogger("uvicorn.access")
    loggers = [logging.getLogger(), access, logging.getLogger("uvicorn.error")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.INFO)
    d = chrome(1280, 1000)
    try:
        with server, allowed, other:
            embed = mint_embed_token(signing_key(settings), allowed.url, ttl_s=120)
            chat["src"] = f"{server.url}/chat/?embed={embed}"
            d.get(f"{allowed.url}/")
            host_html = d.page_source
            d.switch_to.frame(d.find_element(By.ID, "chat"))
            _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#rag-question textarea"), 90, "the embedded chat")
            frame_url = d.execute_script("return location.href")
            assert frame_url == f"{server.url}/chat/", frame_url  # the token is gone from the URL
            _ask(d, WARRANT)
            _wait_answers(d, 1)
            assert d.find_elements(By.CSS_SELECTOR, "#rag-chatbot .rag-answer a.rag-cite")
            frame_html = d.page_source
            cookies = d.get_cookies()
            assert [c["name"] for c in cookies] == ["rag_session"] and cookies[0]["httpOnly"]
            d.switch_to.default_content()

            # The same browser, now holding a valid session, on a host page that is not allowed.
            d.get_log("browser")  # clear
            d.get(f"{other.url}/")
            d.switch_to.frame(d.find_element(By.ID, "chat"))
            assert not d.find_elements(By.CSS_SELECTOR, "#rag-question textarea")
            d.switch_to.default_content()
            console = " ".join(e["message"] for e in d.get_log("browser"))
            assert "frame-ancestors" in console, console
            other_html = d.page_source
    finally:
        d.quit()
        for lg, level in zip(loggers, levels):
            lg.removeHandler(handler)
            lg.setLevel(level)
    lines = log.getvalue()
    assert "GET /chat/" in lines  # the access log was captured
    for where, text in [("host page", host_html), ("chat frame", frame_html), ("other host", other_html),
                        ("frame URL", frame_url), ("cookies", repr(cookies)), ("server log", lines)]:
        assert TOKEN not in text, f"the API token appears in the {where}"
    assert embed not in lines, "the embed token appears in the server log"
