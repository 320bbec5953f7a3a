"""The chat page: a Gradio 6 Blocks app over one shared Engine.

Every browser session (and every gradio_client session) has its own conversation in a gr.State;
the Engine is shared. Answers stream into the chatbot, then the final answer replaces the draft
with its [n] markers linked to the sources panel. All text placed in HTML is escaped (ui.render).

Endpoints for gradio_client (see `view_api()`):
  /ask    (question, k, mode) -> the answer JSON of Answer.to_json() plus "history": the session's
          turns so far; follow-up questions use that session's history.
  /clear  () -> forgets the session's conversation.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import gradio as gr

from rag.config import Settings
from rag.records import PUBLIC, Draft, Filters, Final, Principal, Turn
from rag.text import fold

from . import render
from .engine import EngineLike, answer_events
from .errors import public_error
from .principals import Principals
from .schemas import K_MAX, K_MIN, MAX_QUESTION_CHARS

log = logging.getLogger(__name__)

# The demo archive's example questions with their expected answers and evidence, in the format of an
# evaluation set (one JSON object a line), for when neither the settings nor the corpus give any.
EXAMPLES_FILE = Path(__file__).resolve().parent / "examples.jsonl"
HISTORY_TURNS = 6  # earlier turns passed to the engine
KEPT_TURNS = 50  # turns a session keeps (older ones are dropped)
MODES = ("hybrid", "dense", "lexical")

# (A backslash ends a line that goes on: the CSS is the same, the line shorter.)
CSS = """
.rag-header h1 { margin: 0 0 .2em 0; font-size: 1.45rem; }
.rag-header p { margin: 0; color: var(--body-text-color-subdued); }
.rag-cite { font-weight: 600; text-decoration: none; color: var(--color-accent); cursor: pointer; }
.rag-cite:hover { text-decoration: underline; }
.rag-refusal { border-left: 4px solid #b45309; background: #fff7ed; color: #7c2d12;
               padding: .5em .75em; border-radius: 4px; }
.rag-refusal-note { margin-top: .35em; font-size: .9em; color: #9a3412; }
.rag-error { border-left: 4px solid #b91c1c; background: #fef2f2; color: #7f1d1d; padding: .5em .75em; }
.rag-cursor { opacity: .6; }
.rag-draft { color: var(--body-text-color-subdued); font-style: italic; }
.rag-draft-label { font-size: .78em; text-transform: uppercase; letter-spacing: .04em; color: #92400e; \
margin-bottom: .2em; }
/* No votes on an unchecked draft: the buttons come back with the checked answer. */
.message-row:has(.rag-draft) .message-buttons, .message-wrap :has(> .rag-draft-label) ~ .message-buttons \
{ display: none !important; }
.rag-sources { font-size: .92rem; line-height: 1.45; }
.rag-sources-empty { color: var(--body-text-color-subdued); }
.rag-question { font-weight: 600; margin: .2em 0 .5em 0; }
.rag-source { border: 1px solid var(--border-color-primary); border-radius: 6px; padding: .55em .7em;
              margin-bottom: .6em; background: var(--background-fill-primary); scroll-margin-top: 12px; }
.rag-source-head { font-weight: 600; }
.rag-n { color: var(--color-accent); }
.rag-publisher { color: var(--body-text-color-subdued); font-size: .85em; margin: .15em 0 .3em 0; }
.rag-passage { margin: 0; white-space: pre-line; overflow-wrap: anywhere; }
.rag-passage mark { background: #fde68a; color: inherit; padding: 0 .1em; }
.rag-turn { margin-bottom: .8em; }
details.rag-turn > summary { cursor: pointer; color: var(--body-text-color-subdued); }
.rag-flash { animation: rag-flash 1.6s ease-out; }
@keyframes rag-flash { 0% { box-shadow: 0 0 0 3px #f59e0b; } 100% { box-shadow: 0 0 0 0 transparent; } }
#rag-sources-panel { max-height: 640px; overflow-y: auto; }
/* Compact layout for narrow widths, e.g. the ~400 px sidebar of the embed. */
@media (max-width: 640px) {
  .rag-header { display: none !important; }
  #rag-sources-panel { max-height: none; }
  .rag-sources { font-size: .85rem; }
  #rag-chatbot { height: 360px !important; }
}
"""

# Clicking a [n] marker scrolls to its source and flashes it (a plain hash link would scroll too).
HEAD = """
<style>
/* Outside Gradio's .contain, where the `css` option's rules (prefixed with it) do not reach. */
@media (max-width: 640px) { .gradio-container .main.app { padding: 6px 8px !important; } }
</style>
<script>
(function () {
  function find(id, from) {
    var root = from && from.getRootNode ? from.getRootNode() : document;
    return (root.getElementById && root.getElementById(id)) || document.getElementById(id);
  }
  // Scroll this document (and a scrolling panel inside it) only: element.scrollIntoView() would
  // also scroll the newsroom page around an embedding iframe.
  function reveal(el) {
    for (var p = el.parentElement; p && p !== document.body; p = p.parentElement) {
      var s = window.getComputedStyle(p);
      if (/(auto|scroll)/.test(s.overflowY) && p.scrollHeight > p.clientHeight) {
        p.scrollTop += el.getBoundingClientRect().top - p.getBoundingClientRect().top - 8;
        break;
      }
    }
    var r = el.getBoundingClientRect();
    if (r.top < 0 || r.bottom > window.innerHeight) {
      window.scrollTo({top: window.scrollY + r.top - 12, behavior: 'smooth'});
    }
  }
  document.addEventListener('click', function (e) {
    var a = e.target && e.target.closest ? e.target.closest('a.rag-cite, a[href^="#src-"]') : null;
    if (!a) return;
    var id = (a.getAttribute('href') || '').replace(/^#/, '');
    var el = find(id, a);
    e.preventDefault();
    e.stopPropagation();
    if (!el) return;
    var d = el.closest('details');
    if (d) d.open = true;
    reveal(el);
    el.classList.remove('rag-flash'); void el.offsetWidth; el.classList.add('rag-flash');
  }, true);
})();
</script>
"""

THEME = gr.themes.Default(
    primary_hue="amber",
    # System fonts: no request to a font CDN (the app also runs offline).
    font=("ui-sans-serif", "system-ui", "-apple-system", "Segoe UI", "Roboto", "sans-serif"),
    font_mono=("ui-monospace", "SFMono-Regular", "Menlo", "monospace"),
)


_EXAMPLE_CACHE: dict[tuple, list[str]] = {}


def choose_examples(engine: EngineLike, settings: Settings, n: int = 4) -> list[str]:
    """Example questions that fit the archive being served and that this engine answers correctly.

    A configured list (RAG_EXAMPLE_QUESTIONS) is shown as given, less any the engine refuses. Else
    the questions come from an evaluation set (RAG_EXAMPLES_QA; default: qa.jsonl in the corpus
    folder, else ui/examples.jsonl): answerable standalone items whose evidence sentences stand in the
    served index (so another archive never shows this demo's questions), kept only when the engine's
    answer holds an expected answer. Checked once per snapshot and process; none is shown when none
    passes.
    """
    try:
        snapshot = engine.retriever.store
    except Exception as exc:  # no usable index: nothing to suggest
        log.warning("no example questions: %s", exc)
        return []
    # Examples are shown to every reader: checked as the public principal, and again once an embargo passes.
    key = (id(engine), snapshot.version, engine.hidden_documents(), tuple(settings.example_questions),
           str(_qa_file(settings)), n)
    if key not in _EXAMPLE_CACHE:
        _EXAMPLE_CACHE[key] = _check_examples(engine, settings, n)
    return list(_EXAMPLE_CACHE[key])


def _qa_file(settings: Settings) -> Path:
    if settings.examples_qa is not None:
        return Path(settings.examples_qa)
    corpus_qa = Path(settings.corpus_dir) / "qa.jsonl"
    return corpus_qa if corpus_qa.exists() else EXAMPLES_FILE


def _check_examples(engine: EngineLike, settings: Settings, n: int) -> list[str]:
    candidates: list[tuple[str, tuple[str, ...], tuple[str, ...]]]
    if settings.example_questions:
        candidates = [(q, (), ()) for q in settings.example_questions]
    else:
        path = _qa_file(settings)
        rows: list[dict[str, Any]] = []
        try:
            with open(path, encoding="utf-8") as f:
                rows = [json.loads(line) for line in f if line.strip()]
        except (OSError, TypeError, ValueError) as exc:
            log.warning("no example questions from %s: %s", path, exc)
        candidates = [(r["question"], tuple(r.get("answers") or ()), tuple(map(str, r["evidence"]))) for r in rows
                      if isinstance(r, dict) and r.get("answerable") and not r.get("history") and r.get("question")
                      and r.get("answers") and r.get("evidence")]
    chosen: list[str] = []
    tried = 0
    for question, answers, evidence in candidates:
        if len(chosen) >= n or tried >= 3 * n:
            break
        if evidence and not all(_in_archive(engine, quote) for quote in evidence):
            continue  # written about another archive
        tried += 1
        try:
            answer = engine.ask(question)
        except Exception as exc:
            log.warning("example question %r failed: %s", question, exc)
            continue
        said = fold(answer.text)
        if not answer.refused and (not answers or any(fold(a) in said for a in answers)):
            chosen.append(question)
        else:
            log.info("example question left out (answered wrongly): %r", question)
    return chosen


def _in_archive(engine: EngineLike, quote: str) -> bool:
    """The quote stands in a chunk of the served archive: a lexical search for it finds it. (One
    search per quote, not the whole archive's text in memory, which a large store cannot afford.)"""
    want = fold(quote)
    hits = engine.retriever.search(quote, 5, mode="lexical", diversify=False, filters=Filters(access=engine.access()))
    return any(want in fold(hit.chunk.text) for hit in hits)


class FeedbackLog:
    """Appends one JSON line per vote; a lock keeps concurrent sessions' lines whole."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def write(self, record: dict[str, Any]) -> None:
        line = json.dumps(record, ensure_ascii=False)
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as f:
                f.write(line + "\n")


def _clean(question: Any) -> str:
    # Lone surrogates (from a crafted request) are no text: drop them rather than fail later.
    return str(question or "").encode("utf-8", "ignore").decode("utf-8").strip()


def _new_session() -> dict[str, Any]:
    return {"turns": []}


def _history(session: dict[str, Any]) -> list[Turn]:
    return [Turn(t["question"], t["answer"].get("answer", "")) for t in session["turns"][-HISTORY_TURNS:]]


def _record(session: dict[str, Any], question: str, answer: dict[str, Any]) -> dict[str, Any]:
    session = {"turns": [*session.get("turns", []), {"question": question, "answer": answer}][-KEPT_TURNS:]}
    return session


def _options(k: Any, mode: Any, settings: Settings) -> tuple[int, Any]:
    try:
        k = int(k) if k is not None else settings.top_k
    except (TypeError, ValueError):
        k = settings.top_k
    k = max(K_MIN, min(K_MAX, k))
    mode = mode if mode in MODES else settings.retrieval_mode
    return k, mode


def _messages(turns: list[dict[str, Any]]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for i, t in enumerate(turns):
        out.append({"role": "user", "content": render.user_html(t["question"])})
        out.append({"role": "assistant", "content": render.answer_html(t["answer"], i)})
    return out


def build_chat(engine: EngineLike, settings: Settings, *, examples: list[str] | None = None,
               on_answer: Callable[[Any], object] | None = None) -> gr.Blocks:
    """The chat Blocks. CSS, HEAD and THEME go to gr.mount_gradio_app (Gradio 6 takes them there)."""
    feedback = FeedbackLog(settings.feedback_log)
    examples = examples if examples is not None else choose_examples(engine, settings)
    principals = Principals(settings)

    def who(request: gr.Request | None) -> Principal:
        """The page's reader, from the same credentials TokenAuth checked (ui/principals.py)."""
        if request is None or not principals.guarded:
            return PUBLIC
        headers = {str(k).lower(): str(v) for k, v in dict(request.headers or {}).items()}
        return principals.of_headers(headers).principal or PUBLIC
    default_mode = settings.retrieval_mode if settings.retrieval_mode in MODES else "hybrid"
    default_k = max(K_MIN, min(K_MAX, int(settings.top_k)))

    def respond(question: str, session: dict[str, Any], k: Any, mode: Any,
                request: gr.Request | None = None) -> Iterator[tuple]:
        question = _clean(question)
        principal = who(request)
        session = session or _new_session()
        turns = session["turns"]
        if not question:
            gr.Warning("Type a question first.")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        if len(question) > MAX_QUESTION_CHARS:
            gr.Warning(f"That question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}.")
            yield gr.skip(), gr.skip(), gr.skip(), gr.skip()
            return
        k, mode = _options(k, mode, settings)
        past = _messages(turns)
        user = {"role": "user", "content": render.user_html(question)}
        yield [*past, user, {"role": "assistant", "content": render.draft_html("")}], "", gr.skip(), gr.skip()
        draft = ""
        try:
            with answer_events(engine, question, _history(session), k=k, mode=mode, principal=principal) as events:
                for event in events:
                    match event:
                        case Draft(text):
                            draft += text
                            yield [*past, user, {"role": "assistant", "content": render.draft_html(draft)}], \
                                gr.skip(), gr.skip(), gr.skip()
                        case Final(answer):
                            if on_answer is not None:  # counted in the metrics (ui/metrics.py)
                                on_answer(answer)
                            session = _record(session, question, answer.to_json())
                            yield (_messages(session["turns"]), gr.skip(), render.sources_html(session["turns"]),
                                   session)
                            return
        except Exception as exc:  # the engine's errors are RagError; anything else is reported too
            log.exception("answering %r failed", question)
            yield [*past, user, {"role": "assistant", "content": render.error_html(public_error(exc))}], \
                gr.skip(), gr.skip(), gr.skip()
            return
        yield [*past, user, {"role": "assistant", "content": render.error_html("no answer was produced")}], \
            gr.skip(), gr.skip(), gr.skip()

    def ask(question: str, k: float, mode: str, session: dict[str, Any],
            request: gr.Request | None = None) -> tuple[dict[str, Any], dict]:
        """Answer a question in this session's conversation; returns the answer JSON with the history."""
        question = _clean(question)
        principal = who(request)
        session = session or _new_session()
        if not question:
            raise gr.Error("question must not be empty")
        if len(question) > MAX_QUESTION_CHARS:
            raise gr.Error(f"question is too long ({len(question)} characters; the limit is {MAX_QUESTION_CHARS})")
        k, mode = _options(k, mode, settings)
        try:
            answer = engine.ask(question, _history(session), k=k, mode=mode, principal=principal).to_json()
        except Exception as exc:
            log.exception("answering %r failed", question)
            raise gr.Error(public_error(exc)) from exc
        if on_answer is not None:
            on_answer(answer)  # its to_json(): status, refused, timings
        session = _record(session, question, answer)
        result = dict(answer)
        result["history"] = [{"question": t["question"], "answer": t["answer"].get("answer", "")}
                             for t in session["turns"]]
        return result, session

    def clear() -> tuple:
        return [], render.sources_html([]), _new_session(), ""

    def vote(data: gr.LikeData, session: dict[str, Any]) -> None:
        turns = (session or {}).get("turns", [])
        index = data.index[0] if isinstance(data.index, (list, tuple)) else data.index
        turn = int(index) // 2
        if not 0 <= turn < len(turns):
            return
        liked = data.liked
        if liked in (True, "Like"):
            value = "up"
        elif liked in (False, "Dislike"):
            value = "down"
        else:
            return  # a vote withdrawn or another option
        t = turns[turn]
        feedback.write({
            "question": t["question"],
            "answer": t["answer"].get("answer", ""),
            "citations": t["answer"].get("citations", []),
            "vote": value,
            "time": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        })
        gr.Info("Thanks for the feedback.")

    with gr.Blocks(title="Newsroom archive Q&A", analytics_enabled=False) as demo:
        session = gr.State(_new_session())
        with gr.Column(elem_classes="rag-header"):
            gr.HTML("<h1>Ask the archive</h1><p>Answers come only from archived articles; every claim "
                    "links to the passage it rests on.</p>", js_on_load=None)
        with gr.Row(equal_height=False):
            with gr.Column(scale=3, min_width=300):
                chatbot = gr.Chatbot(
                    elem_id="rag-chatbot", label="Conversation", height=460, render_markdown=False,
                    sanitize_html=True, allow_tags=False, feedback_options=("Like", "Dislike"),
                    buttons=["copy"], layout="bubble",
                    placeholder="Ask a question about the archived articles.",
                )
                with gr.Row():
                    question = gr.Textbox(
                        elem_id="rag-question", show_label=False, scale=5, lines=1, max_lines=4,
                        placeholder="Ask about the archive, e.g. who, what, when…", autofocus=True,
                        max_length=MAX_QUESTION_CHARS, submit_btn=False,
                    )
                    send = gr.Button("Ask", variant="primary", scale=1, min_width=70, elem_id="rag-send")
                if examples:
                    gr.Examples(examples=[[q] for q in examples], inputs=[question], label="Try asking")
                with gr.Row():
                    clear_btn = gr.Button("Clear conversation", size="sm", variant="secondary",
                                          elem_id="rag-clear")
                with gr.Accordion("Options", open=False, elem_id="rag-options"):
                    k_slider = gr.Slider(1, 20, value=default_k, step=1, label="Passages to retrieve",
                                         elem_id="rag-k")
                    mode_radio = gr.Radio(list(MODES), value=default_mode, label="Retrieval mode",
                                          elem_id="rag-mode")
            with gr.Column(scale=2, min_width=280):
                gr.Markdown("### Sources")
                sources = gr.HTML(render.sources_html([]), elem_id="rag-sources-panel", js_on_load=None)

        ask_event = dict(fn=respond, inputs=[question, session, k_slider, mode_radio],
                         outputs=[chatbot, question, sources, session], api_visibility="private",
                         concurrency_limit=4, concurrency_id="engine", show_progress="minimal")
        question.submit(**ask_event)
        send.click(**ask_event)
        clear_btn.click(clear, None, [chatbot, sources, session, question], api_name="clear")
        # The chatbot's own trash icon clears the session too, not just the messages on screen.
        chatbot.clear(clear, None, [chatbot, sources, session, question], api_visibility="private")
        chatbot.like(vote, [session], None, api_visibility="private")

        # API-only endpoint for gradio_client: hidden components, the same per-session State.
        with gr.Group(visible=False):
            api_question = gr.Textbox(label="question")
            api_k = gr.Number(value=default_k, label="k", precision=0, minimum=1, maximum=20)
            api_mode = gr.Dropdown(list(MODES), value=default_mode, label="mode")
            api_answer = gr.JSON(label="answer")
            api_button = gr.Button("ask")
        api_button.click(ask, [api_question, api_k, api_mode, session], [api_answer, session], api_name="ask",
                         concurrency_limit=4, concurrency_id="engine")
    return demo
