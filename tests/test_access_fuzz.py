"""The access rules under a fuzz run (devtools/access_fuzz.py): random callers, desks and questions
aimed at the three restricted facts (tests/fixtures/rules); 0 leaks, 0 server errors, every invalid
credential refused. A few hundred requests here; `python -m eval.bench.access_fuzz` sends a thousand
(figures in eval/ACCESS.md).
"""

from __future__ import annotations

import pytest

from devtools.access_fuzz import fuzz_server, run

pytestmark = pytest.mark.slow

REQUESTS = 200


@pytest.fixture(scope="module")
def server(tmp_path_factory, embedder):
    with fuzz_server(tmp_path_factory.mktemp("fuzz"), embedder) as (url, settings):
        yield url, settings


def test_random_requests_leak_nothing_and_never_fail(server):
    url, settings = server
    got = run(url, settings, REQUESTS, seed=25)
    print(f"{got.requests} requests in {got.seconds:.0f} s, statuses {dict(sorted(got.statuses.items()))}")
    assert got.requests == REQUESTS
    assert set(got.by_path) == {"/api/search", "/api/ask", "/api/ask/stream", "/v1/chat/completions"}
    assert not got.errors, got.errors[:5]
    assert not got.unrefused, got.unrefused[:5]
    assert not got.leaks, got.leaks[:5]
    assert got.statuses.get(200, 0) > 0.3 * REQUESTS  # most were served, not just refused at the door
