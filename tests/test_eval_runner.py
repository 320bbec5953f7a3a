"""The evaluation runner: outputs, report, gate and CLI, with a scripted engine and with the real one."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from eval.gate import DEFAULT_THRESHOLDS, check_thresholds, gate_lines, load_thresholds
from eval.qa import load_qa
from eval.runner import main, rescore, run_eval
from rag.config import Settings
from rag.records import Answer, Chunk, Citation, Hit

ROOT = Path(__file__).resolve().parents[1]
QA = ROOT / "eval" / "qa.jsonl"
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class FakeEngine:
    """Answers from the question set itself: the first gold answer, citing a hit that holds the
    evidence; refuses unanswerable items. `wrong` ids get a wrong answer, `refuse` ids a refusal."""

    def __init__(self, items, tmp_path: Path, *, wrong=(), refuse=()):
        self.by_question = {i.question: i for i in items}
        self.wrong, self.refuse = set(wrong), set(refuse)
        self.settings = Settings(index_dir=tmp_path / "index", corpus_dir=ROOT / "corpus")
        self.generator = SimpleNamespace(id="fake-generator")
        self.embedder = SimpleNamespace(id="fake-embedder")
        self.calls: list[tuple[str, tuple]] = []
        self.ingested: list[list] = []

    def ingest(self, paths):
        self.ingested.append(list(paths))
        # Leave a CURRENT pointer so a second run finds an index.
        (Path(self.settings.index_dir) / "v-1").mkdir(parents=True, exist_ok=True)
        (Path(self.settings.index_dir) / "CURRENT").write_text("v-1")

    def ask(self, question, history=(), *, k=None):
        self.calls.append((question, tuple(history)))
        item = self.by_question[question]
        n = len(self.calls)
        timings = {"retrieve_s": 0.01, "ttft_s": 0.1 * n, "total_s": 0.5 + 0.1 * n}
        evidence = item.evidence[0] if item.evidence else "Nothing relevant here."
        hits = (Hit(Chunk("doc000", "c-ev", 0, 10, f"Context. {evidence}. More."), 0.9, 1),) + tuple(
            Hit(Chunk("doc000", f"c-{r}", 10, 20, f"Unrelated passage {r} about the weather."), 0.5, r)
            for r in range(2, self.settings.top_k + 1))
        if not item.answerable or item.id in self.refuse:
            return Answer(question, question, "The archive does not say.", True, (), hits, timings)
        text = "Nobody knows [1]." if item.id in self.wrong else f"{item.answers[0]} [1]."
        cite = Citation(1, "doc000", "T", "c-ev", evidence, 0, len(evidence))
        return Answer(question, question, text, False, (cite,), hits, timings)


@pytest.fixture()
def items():
    return load_qa(QA)


def _thresholds(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "thresholds.toml"
    path.write_text(body, encoding="utf-8")
    return path


# -- (a) outputs ------------------------------------------------------------------------------------

def test_run_eval_writes_results_metrics_and_a_report_with_plots(items, tmp_path):
    subset = items[:12] + [i for i in items if not i.answerable][:2]
    engine = FakeEngine(subset, tmp_path, wrong={subset[0].id})
    out = tmp_path / "out"
    metrics = run_eval(engine, subset, out_dir=out, progress=False, qa_file=QA)

    rows = [json.loads(line) for line in (out / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == [i.id for i in subset]
    for key in ("question", "standalone_question", "answer", "refused", "citations", "hits", "timings",
                "categories", "correct", "token_f1", "first_relevant_rank", "citation_supported", "grounded"):
        assert key in rows[0], key
    assert rows[0]["correct"] is False and rows[1]["correct"] is True
    # Follow-up history is replayed as written.
    for item, (question, history) in zip(subset, engine.calls, strict=True):
        assert question == item.question and history == item.history

    saved = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert saved == json.loads(json.dumps(metrics))
    assert saved["items"] == len(subset) and saved["qa_file"] == "qa.jsonl"
    assert saved["models"] == {"generator": "fake-generator", "embedder": "fake-embedder"}
    assert saved["settings"]["top_k"] == engine.settings.top_k and saved["date"]
    n_answerable = sum(i.answerable for i in subset)
    assert saved["overall"]["answer_accuracy"] == pytest.approx((n_answerable - 1) / n_answerable)
    assert saved["overall"]["refusal_accuracy"] == 1.0
    assert saved["overall"]["citation_precision"] == 1.0
    assert saved["overall"]["recall@1"] == 1.0 and saved["overall"]["recall@10"] is None
    assert set(saved["by_category"]) >= {"standalone", "unanswerable"}

    # Scoring again from results.jsonl alone gives the same figures.
    again = rescore(out, subset, out_dir=tmp_path / "rescored")
    assert again["overall"] == saved["overall"] and again["models"] == saved["models"]

    report = (out / "report.md").read_text(encoding="utf-8")
    for heading in ("## Summary", "## Definitions", "## Failures", "### Wrong answers (1)"):
        assert heading in report
    assert subset[0].question in report and "Nobody knows" in report
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report)
    assert len(images) == 3  # latency, categories, accuracy against coverage
    for link in images:
        assert not Path(link).is_absolute()
        png = out / link
        assert png.is_file() and png.read_bytes()[:8] == PNG_MAGIC


def test_secrets_stay_out_of_metrics_json(items, tmp_path):
    engine = FakeEngine(items[:1], tmp_path)
    engine.settings = engine.settings.model_copy(update={"openai_api_key": "sk-secret", "api_token": "tok"})
    run_eval(engine, items[:1], out_dir=tmp_path, progress=False)
    text = (tmp_path / "metrics.json").read_text(encoding="utf-8")
    assert "sk-secret" not in text and '"tok"' not in text


# -- (b) the gate -----------------------------------------------------------------------------------

def test_gate_fails_naming_the_metric_and_passes_otherwise(items, tmp_path, capsys):
    subset = items[:10]
    engine = FakeEngine(subset, tmp_path, wrong={subset[0].id})  # answer accuracy 9/10 = 0.9
    qa = tmp_path / "qa.jsonl"
    qa.write_text(QA.read_text(encoding="utf-8"), encoding="utf-8")
    args = ["--qa", str(qa), "--limit", "10", "--out", str(tmp_path / "out"), "--quiet", "--check"]

    raised = _thresholds(tmp_path, 'answer_accuracy = 0.95\n"recall@5" = 0.5\n')
    assert main([*args, "--thresholds", str(raised)], engine=engine) == 1
    err = capsys.readouterr().err
    assert "answer_accuracy: measured 0.9000, below minimum 0.9500" in err
    assert "recall@5" not in err

    met = _thresholds(tmp_path, 'answer_accuracy = 0.9\n"recall@5" = 0.5\nmax_false_refusal_rate = 0.0\n')
    assert main([*args, "--thresholds", str(met)], engine=engine) == 0
    assert "gate passed" in capsys.readouterr().out

    # Maximum thresholds: one false refusal in 10 answerable items is 0.1 > 0.05.
    engine = FakeEngine(subset, tmp_path, refuse={subset[1].id})
    capped = _thresholds(tmp_path, "max_false_refusal_rate = 0.05\n")
    assert main([*args, "--thresholds", str(capped)], engine=engine) == 1
    assert "false_refusal_rate: measured 0.1000, above maximum 0.0500" in capsys.readouterr().err

    # Without --check the same run exits 0 and the report shows the gate.
    assert main([*args[:-1], "--thresholds", str(capped)], engine=engine) == 0
    assert "**FAIL**" in (tmp_path / "out" / "report.md").read_text(encoding="utf-8")


def test_gate_skips_figures_the_set_cannot_measure_and_rejects_unknown_names(items, tmp_path, capsys):
    metrics = {"overall": {"answer_accuracy": 0.9, "refusal_accuracy": None}, "by_category": {
        "follow-up": {"answer_accuracy": 0.5}}}
    th = {"answer_accuracy": 0.8, "refusal_accuracy": 0.9, "category": {"follow-up": {"answer_accuracy": 0.6}}}
    failures, skipped = check_thresholds(metrics, th)
    assert skipped == ["refusal_accuracy"]
    assert gate_lines(failures) == ["answer_accuracy [follow-up]: measured 0.5000, below minimum 0.6000"]

    bad = _thresholds(tmp_path, "answer_acuracy = 0.8\n")
    engine = FakeEngine(items[:1], tmp_path)
    assert main(["--qa", str(QA), "--limit", "1", "--out", str(tmp_path / "o"), "--quiet", "--check",
                 "--thresholds", str(bad)], engine=engine) == 2
    assert "unknown metric 'answer_acuracy'" in capsys.readouterr().err
    assert engine.calls == []  # refused before answering anything


def test_shipped_thresholds_file_is_valid():
    th = load_thresholds(DEFAULT_THRESHOLDS)
    assert th["answer_accuracy"] > 0 and "max_false_refusal_rate" in th and "recall@5" in th


# -- (c) any file in the schema -------------------------------------------------------------------------

def test_runner_works_on_a_subset_file_and_ingests_a_missing_index(items, tmp_path, capsys):
    keep = {"q001", "q004", "q071"}  # standalone, follow-up, unanswerable
    lines = [line for line in QA.read_text(encoding="utf-8").splitlines()
             if line.strip() and json.loads(line)["id"] in keep]
    qa = tmp_path / "subset.jsonl"
    qa.write_text("\n".join(lines) + "\n", encoding="utf-8")
    subset = load_qa(qa)
    engine = FakeEngine(subset, tmp_path)
    out = tmp_path / "subset-out"

    assert main(["--qa", str(qa), "--out", str(out), "--quiet", "--check",
                 "--thresholds", str(DEFAULT_THRESHOLDS)], engine=engine) == 0
    assert engine.ingested == [[ROOT / "corpus"]]  # no index yet: the corpus is ingested first
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["items"] == 3 and metrics["qa_file"] == "subset.jsonl"
    assert set(metrics["by_category"]) == {"standalone", "follow-up", "unanswerable", "tune"}
    follow_up = next(i for i in subset if i.id == "q004")
    assert (follow_up.question, follow_up.history) in engine.calls and follow_up.history
    assert len((out / "results.jsonl").read_text(encoding="utf-8").splitlines()) == 3

    # The index now exists: a second run does not ingest again.
    assert main(["--qa", str(qa), "--out", str(out), "--quiet"], engine=engine) == 0
    assert len(engine.ingested) == 1
    assert main(["--qa", str(tmp_path / "missing.jsonl"), "--out", str(out)], engine=engine) == 2


# -- the real engine ---------------------------------------------------------------------------------------

def _require_ask():
    from rag.pipeline import Engine

    if not hasattr(Engine, "ask"):
        pytest.skip("rag.pipeline.Engine has no ask() yet; this test turns on when it lands")


def test_real_engine_on_three_items(request, tmp_path):
    _require_ask()  # before the fixture, so a skip costs no model loading
    engine = request.getfixturevalue("engine")
    items = {i.id: i for i in load_qa(QA)}
    subset = [items["q001"], items["q004"], items["q071"]]  # standalone, follow-up, unanswerable
    metrics = run_eval(engine, subset, out_dir=tmp_path, progress=False, qa_file=QA)
    rows = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text(encoding="utf-8").splitlines()]
    assert [r["id"] for r in rows] == ["q001", "q004", "q071"]
    assert all(r["hits"] and r["timings"].get("total_s") is not None for r in rows)
    assert metrics["items"] == 3 and metrics["models"]["embedder"]
    assert metrics["overall"]["total_p50_s"] > 0
    assert (tmp_path / "report.md").is_file() and (tmp_path / "latency.png").is_file()


@pytest.mark.slow
def test_gate_on_full_set(request):
    """The CI gate: the whole question set through the real engine, against eval/thresholds.toml.
    The run is kept in test-artifacts/eval/ (git-ignored) so a failure leaves a report to read."""
    _require_ask()
    from rag.pipeline import Engine

    plumbing = request.getfixturevalue("engine")
    # The fitted decision threshold (rag/decision_model.json), not the plumbing tests' one (tests/conftest.py).
    settings = plumbing.settings.model_copy(update={"answer_threshold": None, "refusal_threshold": None})
    engine = Engine(settings, embedder=plumbing.embedder, generator=plumbing.generator)
    out = ROOT / "test-artifacts" / "eval"
    thresholds = load_thresholds(DEFAULT_THRESHOLDS)
    metrics = run_eval(engine, load_qa(QA), out_dir=out, progress=False, qa_file=QA, thresholds=thresholds)
    failures, _ = check_thresholds(metrics, thresholds)
    assert not failures, "evaluation gate failed (report: {}):\n{}".format(
        out / "report.md", "\n".join(gate_lines(failures)))
