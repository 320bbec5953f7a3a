"""Chunks hash-partitioned across shard servers through postgres_fdw; the coordinator runs the same SQL.

The coordinator holds `documents`, `rag_meta` and a `chunks` table PARTITION BY HASH (doc_id)
whose partitions are foreign tables, one per shard; each shard holds a plain `chunks_shard`
table with its own HNSW and GIN indexes. All of a document's chunks land on one shard, so the
per-document replace of an ingest touches one shard, and postgres_fdw's REPEATABLE READ remote
transaction gives each search one snapshot per shard: an answer still never mixes two versions
of a document. BM25 document frequencies are counted over all shards by the same query.

postgres_fdw commits the shards' remote transactions when the coordinator commits, without
two-phase commit: a coordinator crash between two shards' commits can leave a batch half applied
(every document still whole, at its old or new version); a rerun of the ingest repairs it.
On Citus the same tables are distributed instead: `SELECT create_distributed_table('chunks', 'doc_id')`
and `SELECT create_reference_table('documents')` after the first migration (see README).
"""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict

from .postgres import chunk_columns, chunk_indexes, connect, migrate

SHARD_TABLE = "chunks_shard"


def create_sharded(coordinator_url: str, shard_urls: list[str], *, dim: int, hnsw_m: int = 16,
                   hnsw_ef_construction: int = 64, ef_search: int = 200) -> None:
    """Set up an empty coordinator database over empty shard databases (idempotent)."""
    for url in shard_urls:
        with connect(url, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute(f"CREATE TABLE IF NOT EXISTS {SHARD_TABLE} ({chunk_columns(dim)}, PRIMARY KEY (doc_id, ord))")
            for sql in chunk_indexes(SHARD_TABLE, hnsw_m, hnsw_ef_construction):
                conn.execute(sql)
            # Search settings for the remote sessions postgres_fdw opens (it does not pass SETs on).
            db = conn.info.dbname
            conn.execute(f'ALTER DATABASE "{db}" SET hnsw.ef_search = {int(ef_search)}')
            conn.execute(f"ALTER DATABASE \"{db}\" SET hnsw.iterative_scan = 'strict_order'")
    with connect(coordinator_url) as conn:
        with conn.transaction():
            conn.execute("CREATE EXTENSION IF NOT EXISTS vector")
            conn.execute("CREATE EXTENSION IF NOT EXISTS postgres_fdw")
            conn.execute(f"CREATE TABLE IF NOT EXISTS chunks ({chunk_columns(dim)}) PARTITION BY HASH (doc_id)")
            for i, url in enumerate(shard_urls):
                p = conninfo_to_dict(url)
                server = f"rag_shard_{i}"
                exists = conn.execute("SELECT 1 FROM pg_foreign_server WHERE srvname = %s", (server,)).fetchone()
                if not exists:
                    # extensions 'vector': pgvector's operators may be sent to the shard, so the
                    # ORDER BY embedding <#> q of the dense CTE runs there on the shard's HNSW index.
                    host, port, db = p.get("host", "localhost"), p.get("port", "5432"), p.get("dbname", "postgres")
                    conn.execute(f"""CREATE SERVER {server} FOREIGN DATA WRAPPER postgres_fdw OPTIONS (
                        host {_lit(host)}, port {_lit(port)}, dbname {_lit(db)}, extensions 'vector',
                        fetch_size '200', async_capable 'true', batch_size '500')""")
                    conn.execute(f"CREATE USER MAPPING IF NOT EXISTS FOR CURRENT_USER SERVER {server} "
                                 f"OPTIONS (user {_lit(p.get('user', 'postgres'))}"
                                 + (f", password {_lit(p['password'])}" if p.get("password") else "") + ")")
                    conn.execute(f"""CREATE FOREIGN TABLE IF NOT EXISTS chunks_p{i} PARTITION OF chunks
                        FOR VALUES WITH (MODULUS {len(shard_urls)}, REMAINDER {i})
                        SERVER {server} OPTIONS (table_name '{SHARD_TABLE}')""")
    with connect(coordinator_url) as conn:
        migrate(conn, dim=dim, hnsw_m=hnsw_m, hnsw_ef_construction=hnsw_ef_construction)


def _lit(value: str) -> str:
    return "'" + str(value).replace("'", "''") + "'"
