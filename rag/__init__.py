"""Newsroom RAG engine: ingest articles, retrieve passages, answer with citations."""

__version__ = "0.1.0"
