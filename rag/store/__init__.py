"""Where chunks live: the embedded snapshot folder (default) or PostgreSQL (RAG_STORE_URL).

The embedded backend's names are re-exported here, as callers imported them before this became
a package (`from rag import store; store.load(...)`).
"""

from .base import Candidate, Store
from .embedded import (CURRENT, DEFAULT_KEEP, FORMAT_VERSION, REBUILD, EmbeddedStore, Snapshot, SnapshotInfo,
                       _fsync_tree, build_manifest, check_compatible, current_name, current_path, list_snapshots,
                       load, load_snapshot, np, read_manifest, rollback, save, switch)

__all__ = ["CURRENT", "DEFAULT_KEEP", "FORMAT_VERSION", "REBUILD", "Candidate", "EmbeddedStore", "Snapshot",
           "SnapshotInfo", "Store", "build_manifest", "check_compatible", "current_name", "current_path",
           "list_snapshots", "load", "load_snapshot", "read_manifest", "rollback", "save", "switch"]
