"""The chat in headless Chromium: the embed demo page, script injection from the corpus, and
per-session histories. Needs Debian's chromium and chromium-driver (/usr/bin); skipped otherwise."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest

from devtools.testing import LiveServer, browser_missing

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(browser_missing() is not None, reason=browser_missing() or ""),
]
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = ROOT / "test-artifacts"
RIVAL = "Who was Milošević's chief rival in the 2000 Yugoslav presidential race?"
WARRANT = "Which body issued an arrest warrant for Milošević?"
FOLLOW_UP = "What share of the first-round vote did he get?"
ANSWER_WAIT = 240  # seconds; the first answer of a session may include loading the model

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
)


@pytest.fixture(scope="module")
def feedback_log(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("feedback") / "feedback.jsonl"


@pytest.fixture(scope="module")
def server(engine, feedback_log):
    from ui.server import create_app

    settings = engine.settings.model_copy(update={"api_token": None, "cors_origins": [],
                                                  "feedback_log": feedback_log})
    with LiveServer(create_app(engine, settings)) as srv:
        yield srv


# -- helpers --------------------------------------------------------------------------------------
from devtools.testing import wait_for as _wait  # noqa: E402


def _open_chat(driver, url: str) -> None:
    from selenium.webdriver.common.by import By

    driver.get(url)
    _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#rag-question textarea"), 60, "the chat page")


def _ask(driver, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    box = driver.find_element(By.CSS_SELECTOR, "#rag-question textarea")
    box.clear()
    box.send_keys(question)
    box.send_keys(Keys.ENTER)


def _finals(driver) -> int:
    error, n = driver.execute_script(
        "const e = document.querySelector('#rag-chatbot .rag-error');"
        "return [e ? e.innerText : null,"
        " document.querySelectorAll('#rag-chatbot .rag-answer, #rag-chatbot .rag-refusal').length];")
    if error:
        raise AssertionError(f"the chat reported an error: {error}")
    return n


def _wait_answers(driver, n: int) -> None:
    _wait(driver, lambda d: _finals(d) >= n, ANSWER_WAIT, f"answer #{n}")


def _user_questions(driver) -> list[str]:
    # In one script: the chatbot re-renders while answers stream, which would stale element handles.
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('#rag-chatbot .rag-user'), e => e.innerText.trim())")


def _shot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    driver.save_screenshot(str(path))
    return path


# -- tests ----------------------------------------------------------------------------------------
def test_embedded_chat_answers_with_a_visible_source(server, browser, feedback_log):
    from selenium.webdriver.common.by import By

    d = browser(1280, 1000)
    d.get(f"{server.url}/embed/")
    frame = _wait(d, lambda d: d.find_element(By.ID, "rag-chat-frame"), 30, "the iframe")
    assert 360 <= frame.size["width"] <= 420  # the ~400 px sidebar
    d.switch_to.frame(frame)
    _wait(d, lambda d: d.find_elements(By.CSS_SELECTOR, "#rag-question textarea"), 60, "the embedded chat")
    _ask(d, WARRANT)
    _wait_answers(d, 1)

    links = d.find_elements(By.CSS_SELECTOR, "#rag-chatbot .rag-answer a.rag-cite")
    assert links, d.find_element(By.ID, "rag-chatbot").text
    target = links[0].get_attribute("href").rsplit("#", 1)[1]
    source = d.find_element(By.ID, target)
    title = source.find_element(By.CSS_SELECTOR, ".rag-title").text
    assert "regime changers" in title.lower() or "milosevic" in title.lower()
    assert source.find_element(By.CSS_SELECTOR, ".rag-publisher").text.startswith("Meduza")
    assert source.find_element(By.CSS_SELECTOR, ".rag-passage mark").text.strip()

    # Clicking the marker brings its source into view, scrolling the chat but not the host page.
    d.switch_to.default_content()
    host_scroll = d.execute_script("return window.scrollY")
    d.switch_to.frame(frame)
    d.execute_script("arguments[0].click()", links[0])
    _wait(d, lambda d: "rag-flash" in (d.find_element(By.ID, target).get_attribute("class") or ""), 5,
          "the source to be highlighted")
    _wait(d, lambda d: d.execute_script(
        "const r = arguments[0].getBoundingClientRect(); return r.top < window.innerHeight && r.bottom > 0;",
        d.find_element(By.ID, target)), 5, "the source to scroll into view")
    assert d.find_element(By.ID, target).is_displayed()
    d.switch_to.default_content()
    assert d.execute_script("return window.scrollY") == host_scroll
    d.switch_to.frame(frame)

    # Thumbs up appends the exchange to the feedback log.
    d.find_element(By.CSS_SELECTOR, "#rag-chatbot button[aria-label='Like']").click()
    _wait(d, lambda d: feedback_log.exists() and feedback_log.read_text().strip(), 15, "the feedback line")
    record = json.loads(feedback_log.read_text().splitlines()[-1])
    assert record["question"] == WARRANT and record["vote"] == "up"
    assert record["citations"] and record["answer"] and record["time"]

    d.switch_to.default_content()
    _shot(d, "embed-answer.png")


def test_corpus_html_is_shown_as_text_and_never_runs(engine, embedder, browser, tmp_path):
    from selenium.webdriver.common.by import By

    from rag.pipeline import Engine
    from ui.server import create_app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "quux.txt").write_text(INJECTED_TEXT, encoding="utf-8")
    (corpus / "articles.toml").write_text(INJECTED_TOML, encoding="utf-8")
    settings = engine.settings.model_copy(update={
        "index_dir": tmp_path / "index", "api_token": None, "cors_origins": [],
        "feedback_log": tmp_path / "feedback.jsonl"})
    # Its own index; the models are shared with the session's engine.
    hostile = Engine(settings, embedder=embedder, generator=engine.generator)
    hostile.ingest([corpus])
    assert "<script>" in hostile.search("Quuxville harvest festival", 1)[0].chunk.text

    with LiveServer(create_app(hostile, settings)) as srv:
        d = browser(1400, 1000)
        _open_chat(d, f"{srv.url}/chat/")
        _ask(d, "Who founded the Quuxville harvest festival?")
        _wait_answers(d, 1)
        panel = d.find_element(By.ID, "rag-sources-panel")
        for details in panel.find_elements(By.TAG_NAME, "details"):  # closest passages, if it refused
            d.execute_script("arguments[0].open = true", details)
        time.sleep(0.3)
        text = panel.text
        assert "<script>window.__pwned=1</script>" in text
        assert '<img src=x onerror="window.__pwned=1">' in text
        if d.find_elements(By.CSS_SELECTOR, "#rag-sources-panel .rag-source"):
            title = d.find_element(By.CSS_SELECTOR, "#rag-sources-panel .rag-title").text
            assert title == 'Quuxville <b>harvest</b> festival <img src=x onerror="window.__pwned=2">'
            assert "Quux <i>Gazette</i>" in panel.text
        # No element was made from the article's markup, in the panel or the conversation.
        assert not d.find_elements(By.CSS_SELECTOR, "#rag-sources-panel script, #rag-sources-panel img, "
                                                    "#rag-sources-panel b, #rag-chatbot script, "
                                                    "#rag-chatbot img[src='x']")
        time.sleep(0.5)  # an onerror handler would have fired by now
        assert d.execute_script("return typeof window.__pwned") == "undefined"
        _shot(d, "injection.png")


def test_two_browser_sessions_keep_separate_histories(server, browser):
    from selenium.webdriver.common.by import By

    a, b = browser(1200, 900), browser(1200, 900)
    _open_chat(a, f"{server.url}/chat/")
    _open_chat(b, f"{server.url}/chat/")
    _ask(a, RIVAL)
    _ask(b, WARRANT)  # both in flight at once
    _wait_answers(a, 1)
    _wait_answers(b, 1)
    _ask(a, FOLLOW_UP)
    _wait_answers(a, 2)

    assert _user_questions(a) == [RIVAL, FOLLOW_UP]
    assert _user_questions(b) == [WARRANT]
    panel_b = b.find_element(By.ID, "rag-sources-panel").text
    assert WARRANT in panel_b and RIVAL not in panel_b and FOLLOW_UP not in panel_b

    # Clearing A's conversation leaves B's alone.
    a.find_element(By.ID, "rag-clear").click()
    _wait(a, lambda d: not _user_questions(d), 15, "the conversation to clear")
    _open_chat(b, f"{server.url}/chat/")  # a reload starts a new session...
    assert _user_questions(b) == []  # ...with nothing carried over from the old one
    _shot(a, "two-sessions-a.png")


def test_gradio_web_component_on_another_origin(engine, browser, tmp_path):
    """The README's <gradio-app> snippet: a host page on another origin, allowed by cors_origins."""
    from starlette.applications import Starlette
    from starlette.responses import HTMLResponse
    from starlette.routing import Route

    from ui.server import create_app

    chat_url: dict[str, str] = {}

    def page(request):
        base = chat_url["base"]
        return HTMLResponse(
            f'<!doctype html><html><head><meta charset="utf-8">'
            f'<script type="module" src="{base}/chat/gradio.js"></script></head>'
            f'<body><main style="display:flex;gap:24px"><article style="flex:1"><h1>Host article</h1></article>'
            f'<aside style="width:400px"><gradio-app src="{base}/chat/"></gradio-app></aside></main></body></html>')

    host = LiveServer(Starlette(routes=[Route("/", page)]))
    settings = engine.settings.model_copy(update={"api_token": None, "cors_origins": [host.url],
                                                  "feedback_log": tmp_path / "feedback.jsonl"})
    with LiveServer(create_app(engine, settings)) as srv, host:
        chat_url["base"] = srv.url
        d = browser(1280, 1000)
        _open_chat(d, f"{host.url}/")
        _ask(d, WARRANT)
        _wait_answers(d, 1)
        assert d.execute_script("return document.querySelectorAll('#rag-sources-panel .rag-source').length")
        _shot(d, "web-component.png")
