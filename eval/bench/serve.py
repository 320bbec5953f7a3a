"""One cold start of `rag serve` in a fresh process: time to health, time to first answer, peak RSS."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

QUESTIONS = (
    "What share did Kostunica get in the first round?",
    "When did Milosevic die?",
    "Who was Milošević's chief rival?",
    "Where was the UN prison where Milosevic was held?",
    "What did Clinton ask Putin to do?",
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def serve_once(root: Path, index: Path, *, answers: int = 10, timeout: float = 120) -> dict[str, float]:
    """Start `rag serve` on a free port (building `index` first if missing), ask `answers` questions."""
    if not (index / "CURRENT").is_file():
        from rag.config import load_settings
        from rag.pipeline import Engine

        Engine(load_settings(index_dir=index)).ingest([root / "corpus"])
    port = _free_port()
    env = {**os.environ, "RAG_INDEX_DIR": str(index)}
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--port", str(port)], cwd=root, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    out: dict[str, float] = {}
    try:
        with httpx.Client(timeout=timeout) as client:
            while "health_s" not in out:
                if proc.poll() is not None:
                    raise RuntimeError(f"rag serve exited with {proc.returncode}: {proc.stderr.read()[-2000:]}")
                if time.perf_counter() - start > timeout:
                    raise RuntimeError(f"rag serve did not answer /api/health within {timeout} s")
                try:
                    if client.get(f"{base}/api/health").status_code == 200:
                        out["health_s"] = time.perf_counter() - start
                except httpx.TransportError:
                    time.sleep(0.05)
            for i in range(answers):
                r = client.post(f"{base}/api/ask", json={"question": QUESTIONS[i % len(QUESTIONS)]})
                r.raise_for_status()
                if i == 0:
                    out["first_answer_s"] = time.perf_counter() - start
        out["peak_rss_mb"] = peak_rss_mb(proc.pid)
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
    return out
