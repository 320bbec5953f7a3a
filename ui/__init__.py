"""Web front ends (Gradio chat, embed widget, JSON API, OpenAI-compatible endpoint, MCP server)."""

import os

# Before any module here imports Gradio, which reads it at import: no analytics calls from a newsroom server.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
