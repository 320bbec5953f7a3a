"""eval/compare.py: two rag eval outputs, every figure but the timings and every item compared."""

import json

from eval.compare import differences, main


def _run(folder, accuracy, answer, ttft):
    folder.mkdir()
    metrics = {"date": str(ttft), "overall": {"answer_accuracy": accuracy, "ttft_p50_s": ttft}}
    (folder / "metrics.json").write_text(json.dumps(metrics), encoding="utf-8")
    row = {"id": "q1", "answer": answer, "timings": {"total_s": ttft}}
    (folder / "results.jsonl").write_text(json.dumps(row) + "\n", encoding="utf-8")
    return folder


def test_runs_that_differ_only_in_timings_are_identical(tmp_path, capsys):
    a, b = _run(tmp_path / "a", 0.5, "48.96 percent", 1.0), _run(tmp_path / "b", 0.5, "48.96 percent", 2.0)
    assert differences(a, b) == []
    assert main([str(a), str(b)]) == 0 and "identical" in capsys.readouterr().out


def test_a_changed_figure_and_a_changed_answer_are_named(tmp_path):
    a, b = _run(tmp_path / "a", 0.5, "48.96 percent", 1.0), _run(tmp_path / "b", 0.6, "38.62 percent", 1.0)
    lines = differences(a, b)
    assert any(line.startswith("metric overall.answer_accuracy: 0.5 -> 0.6") for line in lines)
    assert any(line.startswith("item q1 answer:") and "38.62" in line for line in lines)
    assert main([str(a), str(b)]) == 1


def test_a_record_that_grew_a_null_field_is_the_same_but_a_value_is_not():
    from eval.compare import grown

    old = [{"n": 1, "quote": "x"}]
    assert grown(old, [{"n": 1, "quote": "x", "correction": None}]) == old
    assert grown(old, [{"n": 1, "quote": "x", "correction": "fixed"}]) != old
    assert grown(old, [{"n": 1, "quote": "y", "correction": None}]) != old
