"""The script-tag widget in headless Chromium, on a host page served from another origin (another
port of 127.0.0.1) than the archive server: real server, real engine, real browser. Needs
Debian's chromium and chromium-driver; skipped otherwise."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest

from devtools.testing import LiveServer, browser_missing

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
TOKEN = "widget-t0ken-for-tests"
WARRANT = "Which body issued an arrest warrant for Milošević?"
UNANSWERABLE = "What did Putin and Clinton discuss about Chechnya?"
ANSWER_WAIT = 240  # seconds; the first answer may include loading the model
GZIP_BUDGET = 8_000  # bytes on the wire for widget.js: small enough for an article page

INJECTED_TEXT = (
    "The Quuxville harvest festival was founded in 1911 by the baker Mara Zorblat. "
    "<script>window.__pwned=1</script> Every October the town square fills with stalls selling plum "
    'dumplings. <img src=x onerror="window.__pwned=1"> In 2019 the festival drew 40,000 visitors, '
    "according to the town council.\n"
)
INJECTED_TOML = (
    '["quux.txt"]\n'
    'title = "Quuxville <b>harvest</b> festival <img src=x onerror=\\"window.__pwned=2\\">"\n'
    'publisher = "Quux <i>Gazette</i>"\n'
    'published = "2019-10-12"\n'
    'url = "javascript:window.__pwned=3"\n'
)


class HostPage:
    """A newsroom page on its own origin whose HTML is set per test (scripts pointing at the archive)."""

    def __init__(self) -> None:
        from starlette.applications import Starlette
        from starlette.responses import HTMLResponse
        from starlette.routing import Route

        self.body = ""

        def page(request):
            return HTMLResponse(
                '<!doctype html><html><head><meta charset="utf-8"><title>Host article</title>'
                # Host styles that would spoil the widget if they reached into it.
                "<style>p, mark, a { color: red !important; background: black; font-size: 30px; }</style></head>"
                '<body><main style="display:flex;gap:24px"><article style="flex:1"><h1>Host article</h1>'
                + "<p>Article text.</p>" * 40 +
                f'</article><aside style="width:400px">{self.body}</aside></main></body></html>')

        self.server = LiveServer(Starlette(routes=[Route("/", page)]))

    @property
    def url(self) -> str:
        return self.server.url


from devtools.testing import wait_for as _wait  # noqa: E402

SHADOW_JS = ("const w = document.querySelectorAll('archive-chat')[arguments[1]];"
             "return w && w.shadowRoot ? Array.from(w.shadowRoot.querySelectorAll(arguments[0])) : [];")


def _shadow(driver, selector: str, index: int = 0) -> list:
    return driver.execute_script(SHADOW_JS, selector, index)


def _ask(driver, question: str, index: int = 0) -> None:
    from selenium.webdriver.common.keys import Keys

    box = _wait(driver, lambda d: _shadow(d, "textarea", index), 30, "the widget")[0]
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def _final(driver, index: int = 0):
    return _wait(driver, lambda d: _shadow(d, ".answer, .refusal, .error", index), ANSWER_WAIT, "the answer")[0]


def _watch_drafts(driver) -> None:
    """Record whether a streamed draft, marked unchecked, was on screen before the checked answer."""
    driver.execute_script(
        "window.__drafts = [];"
        "const root = document.querySelector('archive-chat').shadowRoot;"
        "new MutationObserver(() => { const b = root.querySelector('.draft .badge');"
        "  if (b) window.__drafts.push([b.textContent, b.nextSibling ? b.nextSibling.textContent : '']); })"
        ".observe(root, {subtree: true, childList: true, characterData: true});")


def _shot(driver, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    driver.save_screenshot(str(ARTIFACTS / name))


def test_widget_on_another_origin_streams_cites_and_highlights(engine, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from ui.server import create_app

    host = HostPage()
    settings = engine.settings.model_copy(update={"api_token": TOKEN, "cors_origins": [host.url],
                                                  "feedback_log": tmp_path / "feedback.jsonl"})
    with LiveServer(create_app(engine, settings)) as srv, host.server:
        assert srv.url != host.url
        host.body = (f'<script src="{srv.url}/widget.js" data-archive-url="{srv.url}" '
                     f'data-token="{TOKEN}" async></script>')
        d = browser(1280, 900)
        d.get(f"{host.url}/")
        _wait(d, lambda d: _shadow(d, "textarea"), 30, "the widget")
        _watch_drafts(d)
        _ask(d, WARRANT)
        final = _final(d)
        assert "error" not in final.get_attribute("class"), final.text
        assert "answer" in final.get_attribute("class")
        # The draft was shown, marked as unchecked, and is gone now that the checked answer is there.
        drafts = d.execute_script("return window.__drafts")
        assert drafts and drafts[0][0] == "Draft, not yet checked", drafts
        assert any(text.strip() for _, text in drafts), drafts
        assert not _shadow(d, ".draft")

        links = _shadow(d, ".answer a.cite")
        assert links, final.text
        target = links[0].get_attribute("href").rsplit("#", 1)[1]
        host_scroll = d.execute_script("return window.scrollY")
        links[0].click()
        card = _wait(d, lambda d: _shadow(d, f"#{target}.active"), 5, "the card to be highlighted")[0]
        title = card.find_element(By.CSS_SELECTOR, ".ct").text
        assert "regime changers" in title.lower() or "milosevic" in title.lower(), title
        assert card.find_element(By.CSS_SELECTOR, ".meta").text.startswith("Meduza")
        mark = card.find_element(By.CSS_SELECTOR, ".passage mark")
        assert "arrest warrant" in mark.text
        # The quote is in view inside the widget's own scrolling log; the host page did not move.
        assert d.execute_script(
            "const m = arguments[0].getBoundingClientRect(), log = arguments[1].getBoundingClientRect();"
            "return m.top >= log.top - 1 && m.bottom <= log.bottom + 1;", mark, _shadow(d, ".log")[0])
        assert d.execute_script("return window.scrollY") == host_scroll
        # The host's styles did not reach the widget's text.
        assert d.execute_script("return getComputedStyle(arguments[0]).backgroundColor", mark) != "rgb(0, 0, 0)"

        # What the article page paid for the widget.
        timing = d.execute_script(
            "const e = performance.getEntriesByType('resource').find(e => e.name.endsWith('/widget.js'));"
            "return e && {transfer: e.transferSize, encoded: e.encodedBodySize, decoded: e.decodedBodySize};")
        raw = httpx.get(f"{srv.url}/widget.js", headers={"Accept-Encoding": "identity"})
        assert raw.status_code == 200 and raw.headers["content-type"].startswith("text/javascript")
        assert timing["decoded"] == len(raw.content)
        assert timing["encoded"] < timing["decoded"]  # sent gzipped
        assert 0 < timing["encoded"] <= GZIP_BUDGET, timing
        ARTIFACTS.mkdir(exist_ok=True)
        (ARTIFACTS / "widget-size.json").write_text(json.dumps(timing) + "\n")
        print(f"\nwidget.js over the wire: {timing}")
        _shot(d, "widget-answer.png")

        # A follow-up in the same widget carries the conversation.
        _ask(d, "What share of the first-round vote did he get?")
        _wait(d, lambda d: len(_shadow(d, ".answer, .refusal, .error")) >= 2, ANSWER_WAIT, "the second answer")
        assert not _shadow(d, ".error")

        # A question the archive cannot answer surely gets no answer, and nothing is cited.
        _ask(d, UNANSWERABLE)
        _wait(d, lambda d: len(_shadow(d, ".answer, .refusal, .error")) >= 3, ANSWER_WAIT, "the refusal")
        refusal = _shadow(d, ".turn:last-child .refusal")
        assert refusal and refusal[0].text.startswith(("No confident answer.", "Not in the archive.")), refusal
        assert not _shadow(d, ".turn:last-child a.cite, .turn:last-child ol.cards > li.card[id]")
        _shot(d, "widget-refusal.png")


def test_document_markup_shows_as_text_in_the_widget(engine, embedder, browser, tmp_path):
    from rag.pipeline import Engine
    from ui.server import create_app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "quux.txt").write_text(INJECTED_TEXT, encoding="utf-8")
    (corpus / "articles.toml").write_text(INJECTED_TOML, encoding="utf-8")
    host = HostPage()
    settings = engine.settings.model_copy(update={
        "index_dir": tmp_path / "index", "api_token": None, "cors_origins": [host.url],
        "feedback_log": tmp_path / "feedback.jsonl"})
    hostile = Engine(settings, embedder=embedder, generator=engine.generator)
    hostile.ingest([corpus])
    assert "<script>" in hostile.search("Quuxville harvest festival", 1)[0].chunk.text

    with LiveServer(create_app(hostile, settings)) as srv, host.server:
        host.body = f'<script src="{srv.url}/widget.js" async></script>'  # the archive URL from the src
        d = browser(1280, 900)
        d.get(f"{host.url}/")
        _ask(d, "Who founded the Quuxville harvest festival?")
        final = _final(d)
        assert "error" not in final.get_attribute("class"), final.text
        for details in _shadow(d, "details"):  # the closest passages, if it refused
            d.execute_script("arguments[0].open = true", details)
        time.sleep(0.3)
        text = d.execute_script("return document.querySelector('archive-chat').shadowRoot.textContent")
        assert "<script>window.__pwned=1</script>" in text
        assert '<img src=x onerror="window.__pwned=1">' in text
        assert 'Quuxville <b>harvest</b> festival <img src=x onerror="window.__pwned=2">' in text
        if _shadow(d, ".answer"):
            assert "Quux <i>Gazette</i> · 2019-10-12" in text  # publisher and date on the card
        # No element was made from the article's markup, and its javascript: url is not a link.
        assert not _shadow(d, "script, img, b, i, a[href^='javascript']")
        time.sleep(0.5)  # an onerror handler would have fired by now
        assert d.execute_script("return typeof window.__pwned") == "undefined"
        _shot(d, "widget-injection.png")


def test_widget_reports_cors_and_token_refusals(engine, browser, tmp_path):
    from ui.server import create_app

    host = HostPage()
    base = {"feedback_log": tmp_path / "feedback.jsonl"}
    closed = create_app(engine, engine.settings.model_copy(update={**base, "api_token": None, "cors_origins": []}))
    guarded = create_app(engine, engine.settings.model_copy(update={
        **base, "api_token": TOKEN, "cors_origins": [host.url]}))
    with LiveServer(closed) as a, LiveServer(guarded) as b, host.server:
        # Two widgets on one page: one archive does not allow this origin, the other (an element the
        # page placed itself) gets a wrong token.
        host.body = (f'<script src="{a.url}/widget.js" async></script>'
                     f'<archive-chat archive-url="{b.url}" token="wrong"></archive-chat>')
        d = browser(1280, 900)
        d.get(f"{host.url}/")
        _wait(d, lambda d: len(d.find_elements("css selector", "archive-chat")) == 2, 30, "two widgets")
        _ask(d, WARRANT, 0)
        _ask(d, WARRANT, 1)
        assert "CORS" in _final(d, 0).text
        assert "(403): invalid token" in _final(d, 1).text

        # The demo page shows the widget beside the iframe.
        with LiveServer(create_app(engine, engine.settings.model_copy(
                update={**base, "api_token": None, "cors_origins": []}))) as demo:
            d.get(f"{demo.url}/embed/")
            _wait(d, lambda d: d.find_elements("css selector", "#rag-widget-slot archive-chat"), 30, "the demo widget")
            assert d.find_elements("css selector", "#rag-chat-frame")
            assert _shadow(d, "textarea")
            d.get("about:blank")  # closes the chat iframe's event stream before the server stops
