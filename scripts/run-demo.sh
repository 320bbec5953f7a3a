#!/usr/bin/env bash
# Set everything up, index corpus/, and start the chat on the demo corpus (web app).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rag ingest corpus
# The chat page opens at http://127.0.0.1:7860/chat/ (RAG_HOST / RAG_PORT to change).
exec .venv/bin/rag serve "$@"
