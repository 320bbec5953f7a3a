"""Evaluation sets, the evaluation and the benchmarks.

    qa.py          the question sets (eval/*.jsonl) read and checked
    metrics.py     the metric functions: pure, no engine
    scoring.py     one answer scored against its item; scored rows aggregated into metrics.json figures
    evaluators.py  an engine measured on a question set: AnswerEvaluator, RetrievalEvaluator
    gate.py        eval/thresholds.toml and the pass/fail check of `rag eval --check`
    report.py      report.md and its plots
    runner.py      `rag eval` (main): runs the above, writes the run's files, parses the flags
    bench/         the benchmarks; `rag bench` is bench/suite.py
    fit_reader.py, fit_decision.py   fit the engine's models on the tune parts
    fuzz_api.py    schema-driven fuzzing of the JSON API
    commands.py    the `rag` commands eval/ brings (eval, bench), found through entry points
    archive/       the real-archive benchmark: its build and checks
"""
