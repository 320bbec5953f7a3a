"""Tools for tests, benchmarks and demos (a live app server, headless Chromium, the docs' screenshots,
local PostgreSQL servers); not shipped with the rag, ui and eval packages."""
