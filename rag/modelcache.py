"""Converted-model caches: written once, atomically, and keyed by the source file's size and mtime."""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def source_key(path: Path) -> str:
    """A short key that changes when the file at `path` is replaced or edited."""
    st = path.stat()
    return hashlib.sha1(f"{st.st_size}:{st.st_mtime_ns}".encode()).hexdigest()[:10]


def content_key(path: Path) -> str:
    """A short key of the file's bytes: the same weights installed in another virtual environment (a
    new clone's) map to the same cache entry, where `source_key` would see a new file (0.1 s at 90 MB)."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()[:10]


def write_atomically(final: Path, write: Callable[[Path], None]) -> bool:
    """Run `write` into a temp folder beside `final`, then rename it into place, so a crash mid-write
    never leaves a half cache that later starts would trust. False when another process won the race."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        write(tmp)
        tmp.chmod(0o755)  # mkdtemp makes it private; the cache may be shared with other users
        try:
            os.rename(tmp, final)
        except OSError:
            if final.is_dir():
                return False
            raise
        return True
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
