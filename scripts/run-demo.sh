#!/usr/bin/env bash
# Set everything up, index corpus/, and start the chat on the demo corpus.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/rag ingest corpus
if .venv/bin/rag --help | grep -q " chat "; then
  exec .venv/bin/rag chat "$@"
fi
# Until the chat lands, show that the index answers a query.
.venv/bin/rag search "What share did Kostunica get in the first round?" -k 3
