"""The machine a benchmark ran on, for the head of its report: figures mean little without it."""

from __future__ import annotations

import os
import platform
import re
from pathlib import Path

SIMD_FLAGS = ("sse4_2", "avx", "avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "amx_int8")


def machine() -> list[str]:
    """Markdown list lines: CPU (rag.autotune's description), memory and load, library versions."""
    from rag.autotune import cpu_info

    cpu = cpu_info()
    mem = next((int(line.split()[1]) / 2**20 for line in Path("/proc/meminfo").read_text().splitlines()
                if line.startswith("MemTotal")), 0.0)  # fmt: skip
    versions = []
    for mod in ("torch", "transformers", "sentence_transformers", "onnxruntime", "openvino", "llama_cpp", "faiss"):
        try:
            versions.append(f"{mod} {__import__(mod).__version__}")
        except Exception:
            versions.append(f"{mod} (not installed)")
    return [
        f"- CPU: {cpu.describe()}",
        f"- Memory: {mem:.0f} GiB; load average at start {os.getloadavg()[0]:.2f}",
        f"- Python {platform.python_version()}; {'; '.join(versions)}",
    ]


def cpu_line() -> str:
    """One line: CPU model, cores, the SIMD flags that matter to the kernels, and the load average."""
    info = Path("/proc/cpuinfo").read_text()
    model = re.search(r"model name\s*:\s*(.*)", info)
    flags_line = re.search(r"flags\s*:\s*(.*)", info)
    flags = set(flags_line.group(1).split()) if flags_line else set()
    simd = [f for f in SIMD_FLAGS if f in flags]
    return (f"CPU: {model.group(1) if model else platform.processor()}, {os.cpu_count()} cores, "
            f"flags: {' '.join(simd)}; load average {os.getloadavg()[0]:.2f}")
