"""The decision: give the model's answer, or say there is no confident answer.

A language model reading passages almost never says it cannot answer, so refusal is decided here,
from general features of the reply and of where it was found: the tokens' log-probabilities, whether
the reply stands in the passages verbatim, whether it is of the asked type, how the ranker scored
the sentence that holds it and whether that is the ranker's best, the retrieval score, whether the
reply only repeats the question's words. A logistic regression fitted on the tune parts of the
question sets (`python -m eval.fit_decision`, weights in `rag/decision_model.json`) turns them into
the probability that the answer is right; the threshold is the lowest at which, out of fold on the
tune parts, at most 5% of the answers given were wrong.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from .fitted import LogisticModel
from .question import Question
from .reader import Evidence
from .reading import Located, Window
from .text import tokenize

MODEL_PATH = Path(__file__).resolve().parent / "decision_model.json"

FEATURES = (
    "lp_mean", "lp_min", "lp_first", "exact", "folded", "typed_match", "typed_miss", "holder_score",
    "holder_best", "holder_centre", "window_first", "hit_score", "echo", "reply_words", "sentence_reply",
    "words", "paraphrase", "windows_read",
)


def features(question: Question, reply_logprobs: Sequence[float], located: Located | None,
             evidence: Sequence[Evidence], wins: Sequence[Window], parser) -> dict[str, float]:
    """The decision's inputs for one reply; everything is 0 where the reply was not found."""
    lps = [lp for lp in reply_logprobs if lp is not None]
    x = dict.fromkeys(FEATURES, 0.0)
    x["windows_read"] = float(len(wins))
    x["lp_mean"] = sum(lps) / len(lps) if lps else -5.0
    x["lp_min"] = min(lps) if lps else -10.0
    x["lp_first"] = lps[0] if lps else -10.0
    if located is None:
        return x
    phrase, sent = located.phrase, located.sentence
    for how, name in (("exact", "exact"), ("folded", "folded"), ("words", "words"), ("checked", "paraphrase")):
        x[name] = float(located.how == how)
    if question.typed:
        doc = parser([sent.text])[0]
        a = sent.text.find(phrase) if located.exact else -1
        inside = [e for e in doc.ents if e.label_ in question.expected
                  and (a < 0 and e.text in phrase or a >= 0 and e.start_char < a + len(phrase) and a < e.end_char)]
        x["typed_match"], x["typed_miss"] = float(bool(inside)), float(not inside)
    scored = {(ev.hit.chunk.doc_id, ev.start): ev.score for ev in evidence}
    doc_id = located.window.evidence.hit.chunk.doc_id
    x["holder_score"] = scored.get((doc_id, sent.start), 0.0)
    best = evidence[0] if evidence else None
    x["holder_best"] = float(best is not None and best.hit.chunk.doc_id == doc_id and best.start == sent.start)
    x["holder_centre"] = float(located.window.evidence.start == sent.start)
    x["window_first"] = float(located.window.n == 1)
    x["hit_score"] = float(located.window.evidence.hit.score)
    words = tokenize(phrase)
    q_terms = set(question.terms)
    x["echo"] = sum(w in q_terms for w in words) / len(words) if words else 1.0
    x["reply_words"] = math.log1p(len(phrase.split()))
    x["sentence_reply"] = float(len(phrase) >= 0.8 * len(sent.text.strip()))
    return x


class DecisionModel(LogisticModel):
    """The decision's weights and its threshold (rag/decision_model.json)."""

    FEATURES = FEATURES
    KIND = "decision model"
    REFIT = "python -m eval.fit_decision"
    PATH = MODEL_PATH
