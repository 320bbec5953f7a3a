#!/usr/bin/env bash
# Set everything up and run the test suite (extra arguments go to pytest).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Browser tests drive Debian's headless Chromium; install it when we can (root with apt-get).
# Without recommends: 26 packages instead of 131 (those pull in systemd, udev, avahi and printing
# daemons, which a headless browser never talks to); fonts-liberation is the one kept, for text.
if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing chromium and chromium-driver for the browser tests"
    t=$SECONDS
    apt-get update -qq >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-liberation >/dev/null
    echo "setup:   done in $((SECONDS - t)) s"
  else
    echo "setup: chromium not installed and cannot install it here: browser tests will be skipped"
  fi
fi
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
# The linter first (rules in pyproject.toml): a finding fails the run before the long tests start.
.venv/bin/ruff check .
# Two workers (pytest-xdist), a test file each at a time, so that module fixtures (a live server, an
# engine) are built once: the suite is mostly one thread of Python at a time, and the second worker
# uses the core the first leaves idle (RAG_TEST_WORKERS=0 runs it in one process).
exec .venv/bin/python -m pytest -n "${RAG_TEST_WORKERS:-2}" --dist loadfile "$@"
