"""Schema-driven fuzzing (schemathesis) of the JSON API, with a bounded example count for CI.

The 1,000+ request run is `python -m eval.fuzz_api --examples 260` (figures in the README)."""

import pytest

from devtools.testing import LiveServer

EXAMPLES = 12  # per operation and mode: 2 POST operations x (valid + invalid) x 12, and health


@pytest.mark.slow
def test_generated_requests_get_no_500_and_match_the_schema(engine, tmp_path):
    from eval.fuzz_api import fuzz
    from ui.server import create_app

    settings = engine.settings.model_copy(update={"api_token": None, "cors_origins": [],
                                                  "feedback_log": tmp_path / "feedback.jsonl"})
    with LiveServer(create_app(engine, settings)) as srv:
        report = fuzz(srv.url, EXAMPLES)
    assert report.requests >= 4 * EXAMPLES, report.summary()  # health has no inputs to vary
    assert not report.failures, "\n".join(report.failures[:10])
    assert not any(code >= 500 and code != 503 for code in report.statuses), report.statuses
