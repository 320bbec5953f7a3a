#!/usr/bin/env bash
# Refresh the pinned dependencies: resolve pyproject.toml (every extra) and requirements/*.in again
# with uv and write requirements/main.lock and requirements/nodeps.lock, every file with its sha256.
# Run after changing a dependency in pyproject.toml or requirements/*.in; the next setup installs
# exactly what the locks say. `bash scripts/lock.sh --upgrade` takes the newest versions allowed.
set -euo pipefail
cd "$(dirname "$0")/.."
uv=${UV:-.venv/bin/uv}
[ -x "$uv" ] || { echo "lock: run scripts/setup.sh first (it installs uv into .venv)" >&2; exit 2; }
# The machines run CPython 3.11 on x86-64 Linux; torch's CPU build lies in /opt/wheels on them (a
# plain torch==2.13.0 from PyPI is a CUDA build).
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_28
        --find-links /opt/wheels --emit-find-links --no-header --quiet "$@")
# The llama.cpp binding is built here from its pinned source (nodeps.lock), so its wheel has no
# PyPI hash to pin; everything it needs is resolved with the rest.
"$uv" pip compile pyproject.toml requirements/tools.in --extra ui --extra eval --extra test --extra postgres \
  --no-emit-package llama-cpp-python "${common[@]}" -o requirements/main.lock
"$uv" pip compile requirements/nodeps.in --no-deps "${common[@]}" -o requirements/nodeps.lock
echo "lock: requirements/main.lock ($(grep -c '^[a-z0-9]' requirements/main.lock) packages) and requirements/nodeps.lock written"
