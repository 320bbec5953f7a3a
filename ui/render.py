"""HTML for the chat page: answers with linked [n] markers and the sources panel.

Every piece of text that comes from a user, a model or a corpus article goes through
`html.escape` before it is placed in markup; the only tags in the output are the ones written
here. An article containing `<script>` or `<img onerror=...>` is shown as text and runs nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from html import escape
from typing import Any

_MARKER = re.compile(r"\[(\d{1,3})\]")

# Two ways of not answering (rag/citations.py): only the second says the archive lacks it.
UNCERTAIN_TITLE = "No confident answer"
UNCERTAIN_TEXT = ("The archive may hold it, but no passage found states it surely enough to cite. "
                  "The closest passages are in the sources panel, their best sentence highlighted.")
NOT_FOUND_TITLE = "Not in the archive"
NOT_FOUND_TEXT = "Nothing in the archive matches this question, so there is nothing to cite."


def _refusal_box(answer: Mapping[str, Any]) -> str:
    if answer.get("status") == "not_found":
        return f'<div class="rag-refusal"><strong>{NOT_FOUND_TITLE}.</strong> <span>{NOT_FOUND_TEXT}</span></div>'
    return (f'<div class="rag-refusal rag-uncertain"><strong>{UNCERTAIN_TITLE}.</strong> '
            f'<span>{UNCERTAIN_TEXT}</span></div>')


def esc(value: Any) -> str:
    return escape("" if value is None else str(value), quote=True)


def _multiline(text: str) -> str:
    """Escaped text with line breaks kept (the chatbot does not render Markdown)."""
    return "<br>".join(esc(line) for line in text.strip("\n").split("\n"))


def source_id(turn: int, n: int) -> str:
    return f"src-{turn}-{n}"


def user_html(text: str) -> str:
    return f'<span class="rag-user">{_multiline(text)}</span>'


def draft_html(text: str) -> str:
    """A streamed draft: escaped, with a cursor, visibly marked as not yet checked (the checked
    answer replaces it; no votes on it)."""
    return (f'<div class="rag-draft-label">Draft, not yet checked against the sources</div>'
            f'<span class="rag-draft">{_multiline(text)}</span><span class="rag-cursor">▍</span>')


def answer_html(answer: Mapping[str, Any], turn: int) -> str:
    """The final answer for the chatbot: escaped text whose [n] markers link to the sources panel."""
    if answer.get("refused"):
        # The closest passages the engine lists follow in the sources panel.
        return _refusal_box(answer)
    cited = {int(c["n"]): c for c in answer.get("citations") or []}

    def link(m: re.Match[str]) -> str:
        n = int(m.group(1))
        c = cited.get(n)
        if c is None:
            return m.group(0)
        return (f'<a class="rag-cite" href="#{source_id(turn, n)}" '
                f'title="{esc(c.get("title"))}">[{n}]</a>')

    # Escaping leaves "[12]" untouched, so markers can be linked after escaping.
    return f'<div class="rag-answer">{_MARKER.sub(link, _multiline(answer.get("answer") or ""))}</div>'


def error_html(message: str) -> str:
    return f'<div class="rag-error"><strong>Something went wrong.</strong> {esc(message)}</div>'


def _hit_for(citation: Mapping[str, Any], hits: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    for h in hits:
        if h.get("chunk_id") == citation.get("chunk_id"):
            return h
    for h in hits:  # a citation whose chunk was not returned: any hit of the document that holds the quote
        if h.get("doc_id") == citation.get("doc_id") and h.get("start", 0) <= citation.get("start", -1) \
                and citation.get("end", 0) <= h.get("end", -1):
            return h
    return None


def passage_html(citation: Mapping[str, Any], hit: Mapping[str, Any] | None) -> str:
    """The passage a citation comes from with the quoted sentence in <mark>; each part escaped."""
    quote = citation.get("quote") or ""
    if hit is not None:
        text = hit.get("text") or ""
        a = int(citation.get("start", 0)) - int(hit.get("start", 0))
        b = int(citation.get("end", 0)) - int(hit.get("start", 0))
        if not (0 <= a <= b <= len(text)) or (quote and text[a:b].strip() != quote.strip()):
            i = text.find(quote) if quote else -1
            a, b = (i, i + len(quote)) if i >= 0 else (-1, -1)
        if a >= 0:
            return f"{esc(text[:a])}<mark>{esc(text[a:b])}</mark>{esc(text[b:])}"
    return f"<mark>{esc(quote)}</mark>"


def _meta_line(hit: Mapping[str, Any] | None) -> str:
    meta = (hit or {}).get("metadata") or {}
    parts = [meta.get("publisher"), meta.get("byline"), meta.get("published")]
    text = " · ".join(esc(p) for p in parts if p)
    return f'<div class="rag-publisher">{text}</div>' if text else ""


def _turn_html(turn: int, question: str, answer: Mapping[str, Any]) -> str:
    hits = answer.get("hits") or []
    items: list[str] = []
    if answer.get("refused"):
        items.append(_refusal_box(answer))
        closest = answer.get("closest") or []
        if closest:
            # Open, not folded: for an uncertain answer these passages are what the journalist reads next.
            rows = "".join(
                f'<li><span class="rag-title">{esc(c.get("title"))}</span>{_meta_line(_hit_for(c, hits))}'
                f'<p class="rag-passage">{passage_html(c, _hit_for(c, hits))}</p></li>' for c in closest)
            items.append(f'<div class="rag-closest"><div class="rag-closest-head">Closest passages, best sentence '
                         f"highlighted</div><ol>{rows}</ol></div>")
    for c in answer.get("citations") or []:
        n = int(c.get("n", 0))
        hit = _hit_for(c, hits)
        title = c.get("title") or (hit or {}).get("title") or c.get("doc_id")
        items.append(
            f'<article class="rag-source" id="{source_id(turn, n)}">'
            f'<div class="rag-source-head"><span class="rag-n">[{n}]</span> '
            f'<span class="rag-title">{esc(title)}</span></div>'
            f"{_meta_line(hit)}"
            f'<p class="rag-passage">{passage_html(c, hit)}</p></article>')
    if not items:
        items.append('<p class="rag-empty">No passages were cited for this answer.</p>')
    return (f'<div class="rag-question">Sources for: <q>{esc(question)}</q></div>' + "".join(items))


def sources_html(turns: Sequence[Mapping[str, Any]]) -> str:
    """The sources panel: the latest answer's sources open, earlier ones folded (newest first)."""
    if not turns:
        return ('<div class="rag-sources rag-sources-empty"><p>Sources for each answer appear here: the '
                "article, its publisher and the passage with the quoted sentence highlighted.</p></div>")
    parts = []
    last = len(turns) - 1
    for i in range(last, -1, -1):
        t = turns[i]
        body = _turn_html(i, t.get("question", ""), t.get("answer") or {})
        if i == last:
            parts.append(f'<section class="rag-turn rag-latest" id="turn-{i}">{body}</section>')
        else:
            parts.append(f'<details class="rag-turn" id="turn-{i}"><summary>Earlier: {esc(t.get("question", ""))}'
                         f"</summary>{body}</details>")
    return '<div class="rag-sources">' + "".join(parts) + "</div>"
