"""Where chunks live: the embedded disk store (default), a snapshot folder, or PostgreSQL (RAG_STORE_URL).

`backend` is the one place the backend is chosen; `open_store` and `open_writer` open the configured
one for reading and for an ingest. The snapshot folder's names are re-exported here, as callers
imported them before this became a package (`from rag import store; store.load(...)`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from ..records import Candidate
from .base import Store, StoreWriter
from .embedded import (
    CURRENT,
    DEFAULT_KEEP,
    FORMAT_VERSION,
    REBUILD,
    EmbeddedStore,
    Snapshot,
    SnapshotInfo,
    build_manifest,
    check_compatible,
    current_name,
    current_path,
    load,
    load_snapshot,
    read_manifest,
    save,
    switch,
)
from .embedded import list_snapshots as _folder_list
from .embedded import rollback as _folder_rollback

if TYPE_CHECKING:
    from ..chunking import ChunkingSettings
    from ..config import Settings
    from ..index import IndexParams

Backend = Literal["postgres", "disk", "folder"]


def backend(settings: Settings) -> Backend:
    """PostgreSQL when RAG_STORE_URL is set, else the embedded kind (see `embedded_kind`)."""
    if settings.store_url:
        return "postgres"
    return embedded_kind(settings.index_dir, settings.embedded_backend)


def open_store(settings: Settings, *, embedder_id: str, chunking: ChunkingSettings, params: IndexParams) -> Store:
    """The configured store, checked to hold chunks made with these settings, for reading."""
    kind = backend(settings)
    if kind == "postgres":
        from .postgres import PostgresStore

        return PostgresStore(settings.store_url, embedder_id=embedder_id, chunking=chunking.to_json(),
                             ef_search=settings.pg_hnsw_ef_search, pool_size=settings.store_pool_size)
    index_dir = Path(settings.index_dir)
    if kind == "disk":
        from .disk import DiskStore

        return DiskStore(index_dir, nprobe=settings.disk_ivf_nprobe, embedder_id=embedder_id,
                         chunking=chunking.to_json(), lexical_max_df_share=settings.disk_lexical_max_df)
    snap = load(index_dir, params)
    check_compatible(snap.manifest, embedder_id=embedder_id, chunking=chunking.to_json(), where=index_dir)
    return EmbeddedStore(snap)


def open_writer(settings: Settings, *, params: IndexParams, use_cache: bool = True) -> StoreWriter:
    """The configured store's writer for an ingest (rag/ingest.py). The embedding cache lives in
    index_dir on the machine that ingests, whichever store holds the chunks."""
    index_dir = Path(settings.index_dir)
    if backend(settings) == "postgres":
        from .pg_writer import PostgresWriter

        return PostgresWriter(settings.store_url, cache_dir=index_dir if use_cache else None,
                              hnsw_m=settings.pg_hnsw_m, hnsw_ef_construction=settings.pg_hnsw_ef_construction)
    return embedded_writer(index_dir, settings.embedded_backend, params=params, keep=settings.keep_snapshots,
                           use_cache=use_cache)


def embedded_writer(index_dir: Path, kind: str | None = "auto", *, params: IndexParams | None = None,
                    keep: int = DEFAULT_KEEP, use_cache: bool = True) -> StoreWriter:
    """The writer of the embedded store of that kind in index_dir ("auto": see `embedded_kind`)."""
    from ..index import IndexParams

    params = params or IndexParams()
    if embedded_kind(index_dir, kind) == "disk":
        from .disk_writer import DiskWriter

        return DiskWriter(Path(index_dir), params=params, keep=keep, use_cache=use_cache)
    from .folder_writer import FolderWriter

    return FolderWriter(Path(index_dir), params=params, keep=keep, use_cache=use_cache)


def indexed_embedder(settings: Settings) -> str | None:
    """The embedder id the configured store records, or None when it holds no index yet (or it is
    unreadable: opening it reports that, with the file named)."""
    kind = backend(settings)
    index_dir = Path(settings.index_dir)
    try:
        if kind == "postgres":
            from .postgres import connect, read_meta, schema_version

            with connect(settings.store_url, autocommit=True) as conn:
                return read_meta(conn).get("embedder") if schema_version(conn) else None
        if kind == "disk":
            from . import disk

            if not disk.is_disk_store(index_dir):
                return None
            db = disk.connect(index_dir)
            try:
                live = disk.live_version(db)
                return None if live is None else disk.version_row(db, live)["settings"].get("embedder")
            finally:
                db.close()
        path = current_path(index_dir)
        return None if path is None else read_manifest(path).get("embedder", {}).get("id")
    except Exception:
        return None


def embedded_kind(index_dir, backend: str | None = "auto") -> str:
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


def has_index(index_dir, backend: str | None = "auto") -> bool:
    """Whether index_dir holds an embedded index of that backend (usable or not: opening it says)."""
    from .disk import is_disk_store

    if embedded_kind(index_dir, backend) == "disk":
        return is_disk_store(Path(index_dir))
    return (Path(index_dir) / CURRENT).exists()


def _disk(index_dir, backend: str | None) -> bool:
    return embedded_kind(index_dir, backend) == "disk"


def list_snapshots(index_dir, backend: str | None = None) -> list[SnapshotInfo]:
    if _disk(index_dir, backend):
        from .disk import is_disk_store
        from .disk import list_snapshots as disk_list

        return disk_list(index_dir) if is_disk_store(index_dir) else []
    return _folder_list(index_dir)


def rollback(index_dir, name: str | None = None, backend: str | None = None) -> str:
    if _disk(index_dir, backend):
        from .disk import rollback as disk_rollback

        return disk_rollback(index_dir, name)
    return _folder_rollback(index_dir, name)

__all__ = ["CURRENT", "DEFAULT_KEEP", "FORMAT_VERSION", "REBUILD", "Candidate", "EmbeddedStore", "Snapshot",
           "SnapshotInfo", "Store", "StoreWriter", "backend", "embedded_writer", "indexed_embedder", "open_store",
           "open_writer", "build_manifest", "check_compatible", "current_name", "current_path",
           "embedded_kind", "has_index", "list_snapshots", "load", "load_snapshot", "read_manifest", "rollback",
           "save", "switch"]
