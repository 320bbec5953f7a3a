"""Where chunks live: the embedded disk store (default), a snapshot folder, or PostgreSQL (RAG_STORE_URL).

The embedded backend's names are re-exported here, as callers imported them before this became
a package (`from rag import store; store.load(...)`).
"""

from pathlib import Path

from .base import Candidate, Store
from .embedded import (CURRENT, DEFAULT_KEEP, FORMAT_VERSION, REBUILD, EmbeddedStore, Snapshot, SnapshotInfo,
                       _fsync_tree, build_manifest, check_compatible, current_name, current_path, list_snapshots,
                       load, load_snapshot, np, read_manifest, save, switch)
from .embedded import list_snapshots as _folder_list, rollback as _folder_rollback


def embedded_kind(index_dir, backend: str | None = "auto") -> str:  # noqa: ANN001
    """Which embedded backend serves index_dir: "folder" or "disk". "auto" (or None) follows the files
    that are there, so an archive indexed before the disk store became the default keeps working (a
    CURRENT pointer without a disk store is a folder index, even a broken one: its error names the
    file); an empty or new directory gets the disk store."""
    if backend not in (None, "auto"):
        return backend
    from .disk import is_disk_store

    index_dir = Path(index_dir)
    folder = (index_dir / CURRENT).exists() and not is_disk_store(index_dir)
    return "folder" if folder else "disk"


def has_index(index_dir, backend: str | None = "auto") -> bool:  # noqa: ANN001
    """Whether index_dir holds an embedded index of that backend (usable or not: opening it says)."""
    from .disk import is_disk_store

    if embedded_kind(index_dir, backend) == "disk":
        return is_disk_store(Path(index_dir))
    return (Path(index_dir) / CURRENT).exists()


def _disk(index_dir, backend: str | None) -> bool:  # noqa: ANN001
    return embedded_kind(index_dir, backend) == "disk"


def list_snapshots(index_dir, backend: str | None = None) -> list[SnapshotInfo]:  # noqa: ANN001
    if _disk(index_dir, backend):
        from .disk import is_disk_store, list_snapshots as disk_list

        return disk_list(index_dir) if is_disk_store(index_dir) else []
    return _folder_list(index_dir)


def rollback(index_dir, name: str | None = None, backend: str | None = None) -> str:  # noqa: ANN001
    if _disk(index_dir, backend):
        from .disk import rollback as disk_rollback

        return disk_rollback(index_dir, name)
    return _folder_rollback(index_dir, name)

__all__ = ["CURRENT", "DEFAULT_KEEP", "FORMAT_VERSION", "REBUILD", "Candidate", "EmbeddedStore", "Snapshot",
           "SnapshotInfo", "Store", "build_manifest", "check_compatible", "current_name", "current_path",
           "embedded_kind", "has_index", "list_snapshots", "load", "load_snapshot", "read_manifest", "rollback",
           "save", "switch"]
