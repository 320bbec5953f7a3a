"""Where chunks live: the embedded snapshot folder (default) or PostgreSQL (RAG_STORE_URL).

The embedded backend's names are re-exported here, as callers imported them before this became
a package (`from rag import store; store.load(...)`).
"""

from .base import Candidate, Store
from .embedded import (CURRENT, DEFAULT_KEEP, FORMAT_VERSION, REBUILD, EmbeddedStore, Snapshot, SnapshotInfo,
                       _fsync_tree, build_manifest, check_compatible, current_name, current_path, list_snapshots,
                       load, load_snapshot, np, read_manifest, save, switch)
from .embedded import list_snapshots as _folder_list, rollback as _folder_rollback


def _disk(index_dir, backend: str | None) -> bool:  # noqa: ANN001
    """Which embedded backend holds index_dir: the one configured, else the one whose files are there."""
    from .disk import is_disk_store

    if backend is not None:
        return backend == "disk"
    return is_disk_store(index_dir) and current_path(index_dir) is None


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
           "list_snapshots", "load", "load_snapshot", "read_manifest", "rollback", "save", "switch"]
