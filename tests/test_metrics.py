"""The evaluation metrics on hand-computed cases (eval/metrics.py, groundedness in rag/grounding.py, and
the scoring and aggregation in eval/scoring.py)."""

from __future__ import annotations

import pytest

from eval.metrics import (
    answer_correct,
    contains_evidence,
    neighbour_recall,
    percentile,
    refusal_sweep,
    retrieval_metrics,
    token_f1,
    wilson_interval,
)
from eval.qa import QAItem
from eval.scoring import aggregate, cited_passage, compute_metrics, score_item
from rag.grounding import ungrounded_terms
from rag.records import Answer, Chunk, Citation, Hit, Turn

EVIDENCE = "Milošević won 38.62 percent and Koštunica got 48.96 percent"
GOOD = "In the first round, Milošević won 38.62 percent and Koštunica got 48.96 percent of the vote."
OTHER = "Protesters gathered in Belgrade on October 5 and stormed the parliament."
FILLER = "The article discusses the regime changers."


def _hit(chunk_id: str, text: str, rank: int) -> Hit:
    return Hit(Chunk("doc000", chunk_id, 0, len(text), text, title="T"), score=1.0 / rank, rank=rank)


def _cite(n: int, chunk_id: str, quote: str) -> Citation:
    return Citation(n, "doc000", "T", chunk_id, quote, 0, len(quote))


def _answer(text: str, *, refused: bool = False, cites=(), hits=(), ttft: float = 0.5, total: float = 1.0):
    return Answer("q", "q", text, refused, tuple(cites), tuple(hits),
                  {"retrieve_s": 0.01, "ttft_s": ttft, "total_s": total}).to_json()


def _item(answers=("48.96",), evidence=(EVIDENCE,), *, answerable=True, history=(), tags=("standalone",), id="x"):
    return QAItem(id, "What share did Kostunica get?", tuple(answers), tuple(evidence), tuple(history),
                  answerable, tuple(tags))


def _row(item: QAItem, answer: dict) -> dict:
    return {"id": item.id, **answer, "categories": item.categories, **score_item(item, answer)}


# -- eval.metrics --------------------------------------------------------------------------------

def test_contains_evidence_folds_case_diacritics_and_quotes():
    assert contains_evidence("MILOSEVIC won 38.62  percent and Kostunica got 48.96 percent.", [EVIDENCE])
    assert not contains_evidence(OTHER, [EVIDENCE])
    assert not contains_evidence(GOOD, ["   "])  # a blank quote supports nothing


def test_recall_at_k_and_mrr_on_a_hand_made_ranking():
    ev = ["needle"]
    results = [
        ["needle here", "b", "c", "d", "e"],  # first relevant at rank 1
        ["a", "b", "the needle", "d", "e"],  # rank 3
        ["a", "b", "c", "d", "e"],  # never
        ["a", "b", "c", "d", "needle"],  # rank 5
    ]
    m = retrieval_metrics(results, [ev] * 4, ks=(1, 3, 5))
    assert m["recall@1"] == pytest.approx(1 / 4)
    assert m["recall@3"] == pytest.approx(2 / 4)
    assert m["recall@5"] == pytest.approx(3 / 4)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 0 + 1 / 5) / 4)
    assert m["n"] == 4
    # Questions without evidence do not count at all.
    assert retrieval_metrics(results + [["x"]], [ev] * 4 + [[]], ks=(1,))["n"] == 4


def test_neighbour_recall_is_the_share_of_the_exact_top_k_found_in_any_order():
    exact = [[1, 2, 3, 4], [5, 6, 7, 8]]
    approx = [[4, 3, 9, 1], [-1, -1, -1, -1]]  # 3 of 4 found; a search that found nothing pads with -1
    assert neighbour_recall(exact, approx) == pytest.approx((3 / 4 + 0) / 2)


def test_answer_correct_whole_words_after_normalising():
    assert answer_correct("Vojislav Koštunica won.", ["Kostunica"])
    assert answer_correct("About 600 000 votes", ["600,000"])
    assert not answer_correct("Kostunicas", ["Kostunica"])
    assert not answer_correct("48.9", ["48.96"])


def test_token_f1_by_hand():
    # pred [vojislav, kostunica, won] vs ref [kostunica]: p = 1/3, r = 1, F1 = 2pr/(p+r) = 0.5
    assert token_f1("Vojislav Kostunica won", ["Koštunica"]) == pytest.approx(0.5)
    # "48.96" -> "48 96"; "the" dropped. pred [48, 96, percent], ref [48, 96, percent, of, votes]:
    # p = 1, r = 3/5, F1 = 2 * 0.6 / 1.6 = 0.75; the best gold answer wins.
    assert token_f1("the 48.96 percent", ["48.96 percent of votes", "nothing"]) == pytest.approx(0.75)
    assert token_f1("no overlap", ["48.96"]) == 0.0


def test_percentile_linear_interpolation():
    assert percentile([4, 1, 3, 2], 50) == pytest.approx(2.5)
    assert percentile([1, 2, 3, 4], 95) == pytest.approx(3.85)  # pos 2.85 -> 3 + 0.85 * (4 - 3)
    assert percentile([5.0], 95) == 5.0
    assert percentile([], 50) == 0.0


# -- citation precision and coverage ---------------------------------------------------------------

def test_cited_passage_is_the_hit_with_that_chunk_id_else_the_quote():
    ans = _answer("48.96", cites=[_cite(1, "c2", "q2"), _cite(2, "zz", "the quote")],
                  hits=[_hit("c1", GOOD, 1), _hit("c2", OTHER, 2)])
    assert cited_passage(ans["citations"][0], ans["hits"]) == OTHER
    assert cited_passage(ans["citations"][1], ans["hits"]) == "the quote"


def test_citation_to_the_wrong_passage_lowers_precision():
    hits = [_hit("c1", GOOD, 1), _hit("c2", OTHER, 2)]
    # Item a cites c1 (has the evidence) and c2 (does not): 1 of 2 supported.
    a = _row(_item(id="a"), _answer("Koštunica got 48.96 percent [1][2].",
                                    cites=[_cite(1, "c1", "Koštunica got 48.96 percent"),
                                           _cite(2, "c2", "Protesters gathered in Belgrade")], hits=hits))
    # Item b cites c1 only: 1 of 1.
    b = _row(_item(id="b"), _answer("48.96 percent [1]", cites=[_cite(1, "c1", "48.96 percent")], hits=hits))
    assert a["citation_supported"] == [True, False]
    assert b["citation_supported"] == [True]
    m = aggregate([a, b])
    assert m["citation_precision"] == pytest.approx(2 / 3)
    assert m["counts"]["citation_precision"] == [2, 3]
    assert m["citation_coverage"] == 1.0  # both correct answers have a supporting citation


def test_quote_fallback_when_the_chunk_is_not_among_the_hits():
    hits = [_hit("c2", OTHER, 1)]
    r = _row(_item(), _answer("48.96", cites=[_cite(1, "gone", EVIDENCE + ".")], hits=hits))
    assert r["citation_supported"] == [True]


def test_correct_but_uncited_answer_lowers_coverage():
    hits = [_hit("c1", GOOD, 1)]
    cited = _row(_item(id="a"), _answer("48.96 percent [1]", cites=[_cite(1, "c1", "48.96")], hits=hits))
    uncited = _row(_item(id="b"), _answer("48.96 percent", hits=hits))
    wrong = _row(_item(id="c"), _answer("50.24 percent", hits=hits))  # wrong answers do not count
    assert uncited["correct"] and uncited["has_supporting_citation"] is False
    m = aggregate([cited, uncited, wrong])
    assert m["answer_accuracy"] == pytest.approx(2 / 3)
    assert m["citation_coverage"] == pytest.approx(1 / 2)
    assert m["counts"]["citation_coverage"] == [1, 2]
    # No citations at all adds nothing to precision's denominator.
    assert m["counts"]["citation_precision"] == [1, 1]


# -- refusals --------------------------------------------------------------------------------------

def test_refusal_on_an_answerable_item_is_wrong_and_a_false_refusal():
    hits = [_hit("c1", GOOD, 1)]
    right = _row(_item(id="a"), _answer("48.96 [1]", cites=[_cite(1, "c1", "48.96")], hits=hits))
    refused = _row(_item(id="b"), _answer("The archive does not say.", refused=True, hits=hits,
                                          cites=[_cite(1, "c1", "48.96")]))
    assert refused["correct"] is False and refused["token_f1"] == 0.0
    assert refused["citation_supported"] is None and refused["grounded"] is None
    m = aggregate([right, refused])
    assert m["answer_accuracy"] == pytest.approx(1 / 2)
    assert m["token_f1"] == pytest.approx(1 / 2)  # citation markers are not answer tokens
    assert m["false_refusal_rate"] == pytest.approx(1 / 2)
    assert m["counts"]["citation_precision"] == [1, 1]  # the refused answer's citation is not counted
    assert m["refusal_accuracy"] is None  # no unanswerable items in this group


def test_refusal_accuracy_over_unanswerable_items():
    un = dict(answers=(), evidence=(), answerable=False, tags=("unanswerable",))
    ok = _row(_item(id="a", **un), _answer("Not in the archive.", refused=True))
    bad = _row(_item(id="b", **un), _answer("In 2004 Putin won."))
    assert ok["refusal_correct"] and not bad["refusal_correct"]
    assert ok["correct"] is None and ok["first_relevant_rank"] is None
    m = aggregate([ok, bad])
    assert m["refusal_accuracy"] == pytest.approx(1 / 2)
    assert m["false_refusal_rate"] is None and m["answer_accuracy"] is None
    assert m["groundedness"] == 0.0  # the one answered item names "Putin" and 2004 with no citation
    assert bad["ungrounded_terms"] == ["2004", "Putin"]


# -- retrieval over the answer's hits ----------------------------------------------------------------

def test_retrieval_figures_from_the_answers_hits():
    def hits(rank: int | None):
        return [_hit(f"c{i}", GOOD if i == rank else FILLER, i) for i in range(1, 6)]

    rows = [_row(_item(id=str(r)), _answer("48.96", hits=hits(r))) for r in (1, 3, None)]
    assert [r["first_relevant_rank"] for r in rows] == [1, 3, None]
    m = aggregate(rows)
    assert m["recall@1"] == pytest.approx(1 / 3)
    assert m["recall@3"] == pytest.approx(2 / 3)
    assert m["recall@5"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 3) / 3)
    assert m["recall@10"] is None  # answers carry 5 hits: recall@10 cannot be measured
    # With top_k given, an answer returning fewer hits than asked for just misses at those ranks.
    short = _row(_item(id="s"), _answer("48.96", hits=hits(None)[:2]))
    m = aggregate(rows + [short], top_k=5)
    assert m["recall@5"] == pytest.approx(2 / 4) and m["recall@10"] is None


# -- groundedness ------------------------------------------------------------------------------------

def test_ungrounded_terms():
    cited = [GOOD, "The runoff was scheduled for October 8, 2000, about 600,000 votes."]
    # Grounded: folded names, numbers, markers, the sentence-initial word, a possessive, common words.
    assert ungrounded_terms("Kostunica got 48.96 percent [1]. He beat Milosevic's 38.62 [2].", cited) == []
    assert ungrounded_terms("The runoff was set for October 8, 2000 [1, 2].", cited) == []
    assert ungrounded_terms("About 600 000 votes, i.e. 600000.", cited) == []
    # Not grounded: a number and names that no cited text has.
    assert ungrounded_terms("Koštunica won 50.24 percent, said Putin and Bill Clinton.", cited) == [
        "50.24", "Putin", "Bill", "Clinton"]
    # The first word of a sentence is not checked, even when it is a name.
    assert ungrounded_terms("Putin agreed. Yeltsin did not.", cited) == []
    assert ungrounded_terms("He met Putin.", []) == ["Putin"]
    # Names of 5+ letters may start a longer word; shorter ones must match whole.
    assert ungrounded_terms("It was the Yugoslav vote.", ["in Yugoslavia"]) == []
    assert ungrounded_terms("It was the US vote.", ["used by USSR"]) == ["US"]


def test_groundedness_uses_the_cited_passages_only():
    hits = [_hit("c1", GOOD, 1), _hit("c2", "Vladimir Putin and Bill Clinton discussed it.", 2)]
    only_c1 = _row(_item(id="a"), _answer("48.96, said Clinton [1].", cites=[_cite(1, "c1", "48.96")], hits=hits))
    both = _row(_item(id="b"), _answer("48.96, said Clinton [1][2].",
                                       cites=[_cite(1, "c1", "48.96"), _cite(2, "c2", "Clinton")], hits=hits))
    assert only_c1["ungrounded_terms"] == ["Clinton"] and only_c1["grounded"] is False
    assert both["grounded"] is True
    assert aggregate([only_c1, both])["groundedness"] == pytest.approx(1 / 2)


# -- latency and categories ---------------------------------------------------------------------------

def test_latency_percentiles_and_categories():
    hits = [_hit("c1", GOOD, 1)]
    rows = [
        _row(_item(id="a"), _answer("48.96 [1]", cites=[_cite(1, "c1", "x")], hits=hits, ttft=0.1, total=1.0)),
        _row(_item(id="b", history=(Turn("Who?", "Koštunica"),), tags=("follow-up",)),
             _answer("50.24", hits=hits, ttft=0.2, total=2.0)),
        _row(_item(id="c", answers=(), evidence=(), answerable=False, tags=("unanswerable", "no-diacritics")),
             _answer("No.", refused=True, ttft=0.3, total=3.0)),
    ]
    m = compute_metrics(rows)
    assert m["overall"]["ttft_p50_s"] == pytest.approx(0.2)
    assert m["overall"]["total_p95_s"] == pytest.approx(2.9)  # pos 1.9 -> 2 + 0.9 * 1
    assert list(m["by_category"]) == ["tune", "standalone", "follow-up", "unanswerable", "no-diacritics"]
    assert m["by_category"]["standalone"]["answer_accuracy"] == 1.0
    assert m["by_category"]["follow-up"]["answer_accuracy"] == 0.0
    assert m["by_category"]["unanswerable"]["refusal_accuracy"] == 1.0
    assert m["by_category"]["no-diacritics"]["n_items"] == 1
    assert m["overall"]["answer_accuracy"] == pytest.approx(1 / 2)


# -- answering and refusing ---------------------------------------------------------------------------

def test_wrong_when_answering_counts_wrong_answers_and_answered_unanswerables():
    hits = [_hit("c1", GOOD, 1)]
    rows = [
        _row(_item(id="a"), _answer("48.96 [1]", cites=[_cite(1, "c1", "x")], hits=hits)),  # right
        _row(_item(id="b"), _answer("50.24 [1]", cites=[_cite(1, "c1", "x")], hits=hits)),  # wrong
        _row(_item(id="c", answers=(), evidence=(), answerable=False, tags=("unanswerable",)),
             _answer("Koštunica [1]", hits=hits)),  # should have been a refusal
        _row(_item(id="d", answers=(), evidence=(), answerable=False, tags=("unanswerable",)),
             _answer("No.", refused=True)),  # refusals are not answers
    ]
    m = aggregate(rows)
    assert m["wrong_when_answering"] == pytest.approx(2 / 3)
    assert m["counts"]["wrong_when_answering"] == [2, 3]


def test_refusal_sweep_trades_coverage_for_wrong_answers():
    sweep = refusal_sweep([0.9, 0.8, 0.3, 0.2], [True, True, False, True])
    assert sweep[0] == (0.2, 1.0, 0.25)  # everything answered: one wrong of four
    assert sweep[1] == (0.3, 0.75, pytest.approx(1 / 3))
    assert sweep[2] == (0.8, 0.5, 0.0)


def test_wilson_interval_brackets_the_share_and_stays_in_range():
    lo, hi = wilson_interval(85, 100)
    assert 0.76 < lo < 0.85 < hi < 0.92  # 0.767-0.907 by the textbook formula
    assert wilson_interval(0, 10)[0] == 0.0 and wilson_interval(0, 10)[1] > 0.2
    assert wilson_interval(10, 10)[1] == 1.0 and wilson_interval(10, 10)[0] < 0.8
    assert wilson_interval(0, 0) == (0.0, 1.0)
