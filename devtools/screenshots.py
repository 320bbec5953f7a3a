"""Screenshots for the docs: the chat page at desktop width, the embed demo with its ~400 px sidebar
and the script-tag widget on the same demo page.

    .venv/bin/python -m devtools.screenshots [--index DIR] [--out docs/screenshots] [--question "..."]

Starts the app on a free 127.0.0.1 port (the index at --index, or RAG_INDEX_DIR if it holds one, or a
temporary index of corpus/), asks one question in headless Chromium (/usr/bin/chromium) and writes
chat.png, embed.png and widget.png.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .testing import LiveServer, browser_missing, chrome, wait_for

ROOT = Path(__file__).resolve().parents[1]
QUESTION = "Which body issued an arrest warrant for Milošević?"


def _ask_and_wait(driver: Any, question: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    wait_for(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#rag-question textarea"), 60, "the chat")
    box = driver.find_element(By.CSS_SELECTOR, "#rag-question textarea")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait_for(driver, lambda d: d.execute_script(
        "return document.querySelectorAll('#rag-chatbot .rag-answer, #rag-chatbot .rag-refusal,"
        " #rag-chatbot .rag-error').length"), 300, "the answer")
    time.sleep(0.5)


def _click_first_citation(driver: Any) -> None:
    driver.execute_script("const a = document.querySelector('#rag-chatbot a.rag-cite'); if (a) a.click();")
    time.sleep(2.0)  # let the highlight animation finish


def take(base_url: str, out: Path, question: str = QUESTION) -> list[Path]:
    from selenium.webdriver.common.by import By

    out.mkdir(parents=True, exist_ok=True)
    shots = []
    d = chrome(1400, 1000)
    try:
        d.get(f"{base_url}/chat/")
        _ask_and_wait(d, question)
        _click_first_citation(d)
        d.execute_script("window.scrollTo(0, 0)")
        time.sleep(0.3)
        d.save_screenshot(str(out / "chat.png"))
        shots.append(out / "chat.png")
    finally:
        d.quit()
    d = chrome(1280, 1000)
    try:
        d.get(f"{base_url}/embed/")
        frame = wait_for(d, lambda d: d.find_element(By.ID, "rag-chat-frame"), 30, "the iframe")
        d.switch_to.frame(frame)
        _ask_and_wait(d, question)
        d.switch_to.default_content()
        d.save_screenshot(str(out / "embed.png"))
        shots.append(out / "embed.png")
        shots.append(_widget(d, question, out / "widget.png"))
    finally:
        d.quit()
    return shots


def _widget(driver: Any, question: str, path: Path) -> Path:
    """The widget in the demo page's article column: an answer with its first card highlighted."""
    from selenium.webdriver.common.keys import Keys

    find = ("const w = document.querySelector('#rag-widget-slot archive-chat');"
            "return w && w.shadowRoot ? w.shadowRoot.querySelector(arguments[0]) : null;")
    box = wait_for(driver, lambda d: d.execute_script(find, "textarea"), 30, "the widget")
    driver.execute_script("document.querySelector('.widget-demo').scrollIntoView()")
    box.send_keys(question)
    box.send_keys(Keys.ENTER)
    wait_for(driver, lambda d: d.execute_script(find, ".answer, .refusal, .error"), 300, "the widget's answer")
    link = driver.execute_script(find, "a.cite")
    if link:
        link.click()
    driver.execute_script("window.scrollTo(0, document.querySelector('.widget-demo').offsetTop - 40)")
    time.sleep(0.5)
    driver.save_screenshot(str(path))
    return path


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--index", type=Path, help="index folder (default: RAG_INDEX_DIR, else a temp index of corpus/)")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "screenshots")
    p.add_argument("--question", default=QUESTION)
    args = p.parse_args(argv)

    from rag import store
    from rag.config import load_settings
    from rag.pipeline import Engine
    from ui.server import create_app

    if browser_missing():
        print(f"error: {browser_missing()}", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="rag-shots-") as tmp:
        settings = load_settings(index_dir=args.index)
        settings = settings.model_copy(update={"api_token": None, "feedback_log": Path(tmp) / "feedback.jsonl"})
        engine = Engine(settings)
        if args.index is None and not store.has_index(settings.index_dir, settings.embedded_backend):
            settings = settings.model_copy(update={"index_dir": Path(tmp) / "index"})
            engine = Engine(settings)
            engine.ingest([ROOT / "corpus"])
        with LiveServer(create_app(engine, settings)) as srv:
            for path in take(srv.url, args.out, args.question):
                print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
