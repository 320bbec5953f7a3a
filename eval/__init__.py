"""Evaluation sets, runners and benchmarks."""
