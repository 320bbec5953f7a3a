"""The PostgreSQL store: documents, chunks, vectors (pgvector, HNSW) and BM25 terms (tsvector, GIN) in tables.

Many app servers share one server (or its streaming replicas); `RAG_STORE_URL=postgresql://...`
selects it. Every search is ONE SQL statement, so it reads one MVCC snapshot: an ingest that
replaces a document's chunks in one transaction is seen entirely or not at all, and an answer
never mixes two versions of a document.

Lexical scores are the BM25 the embedded store computes (bm25s, Lucene variant, k1=1.2, b=0.75)
over the same folded, stemmed tokens (rag/text.py tokenize): the tsvector holds those tokens (its
GIN index finds the chunks that hold a query term), a jsonb map holds each token's frequency, the
document frequencies are counted over the matching rows in the same statement and the collection
size and mean length come from rag_stats. That keeps the two backends' rankings alike, which plain
ts_rank_cd (no IDF) does not. (Reading frequencies by unnest(tsvector) instead cost ~0.35 us per
lexeme of every matching chunk: 4x slower at 15k chunks.)
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError, IndexError_, IndexMismatchError
from ..records import Candidate, Chunk, Filters
from ..text import query_tokens
from . import base
from .base import RRF_K, rrf, weighted

if TYPE_CHECKING:
    import psycopg

SCHEMA_VERSION = 1
K1, B = 1.2, 0.75  # as LexicalIndex builds bm25s
# Taken by every writer for its transaction: one ingest at a time, readers never wait for it.
INGEST_LOCK = 7215_0015


def safe_url(url: str) -> str:
    """The URL without its password, for messages and health."""
    from psycopg.conninfo import conninfo_to_dict

    try:
        parts = conninfo_to_dict(url)
    except Exception:
        return "postgresql://?"
    host, port, db = parts.get("host", "localhost"), parts.get("port", "5432"), parts.get("dbname", "")
    user = f"{parts['user']}@" if parts.get("user") else ""
    return f"postgresql://{user}{host}:{port}/{db}"


def connect(url: str, *, autocommit: bool = False) -> psycopg.Connection:
    import psycopg

    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10)
    except psycopg.Error as exc:
        raise IndexError_(f"cannot connect to the store {safe_url(url)} (RAG_STORE_URL): {exc}".strip()) from exc
    _register_vector(conn)
    return conn


def _register_vector(conn: psycopg.Connection) -> None:
    from pgvector.psycopg import register_vector

    try:
        register_vector(conn)
    except Exception:
        if not conn.autocommit:
            conn.rollback()


# -- schema ----------------------------------------------------------------------------------------
def _schema_v1(dim: int, hnsw_m: int, hnsw_ef_construction: int, _partitioned: bool = False) -> list[str]:
    return [
        "CREATE EXTENSION IF NOT EXISTS vector",
        """CREATE TABLE IF NOT EXISTS rag_meta (key text PRIMARY KEY, value jsonb NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS documents (
            doc_id text PRIMARY KEY, hash text NOT NULL, source text NOT NULL, title text NOT NULL,
            metadata jsonb NOT NULL, n_chunks int NOT NULL, n_tokens bigint NOT NULL,
            updated timestamptz NOT NULL DEFAULT clock_timestamp())""",
        # BM25's collection statistics, kept by every ingest transaction (all writers hold INGEST_LOCK).
        """CREATE TABLE IF NOT EXISTS rag_stats (one bool PRIMARY KEY DEFAULT true CHECK (one),
            n_chunks bigint NOT NULL, n_tokens bigint NOT NULL)""",
        "INSERT INTO rag_stats VALUES (true, 0, 0) ON CONFLICT DO NOTHING",
        f"CREATE TABLE IF NOT EXISTS chunks ({chunk_columns(dim)}, PRIMARY KEY (doc_id, ord))",
        # A sharded coordinator's chunks are foreign partitions (rag/store/pg_shards.py): their
        # indexes live on the shards.
        *([] if _partitioned else chunk_indexes("chunks", hnsw_m, hnsw_ef_construction)),
    ]


def chunk_columns(dim: int) -> str:
    # doc_key / meta_folded / published: what Filters compare, folded at ingest like the query side.
    return f"""doc_id text NOT NULL, ord int NOT NULL, chunk_id text NOT NULL, start_at int NOT NULL,
        end_at int NOT NULL, text text NOT NULL, title text NOT NULL, metadata jsonb NOT NULL,
        doc_key text NOT NULL, meta_folded jsonb NOT NULL, published text NOT NULL,
        ntok int NOT NULL, tsv tsvector NOT NULL, tf jsonb NOT NULL, embedding vector({int(dim)}) NOT NULL"""


def chunk_indexes(table: str, hnsw_m: int = 16, hnsw_ef_construction: int = 64) -> list[str]:
    return [
        f"CREATE INDEX IF NOT EXISTS {table}_embedding ON {table} USING hnsw (embedding vector_ip_ops) "
        f"WITH (m = {int(hnsw_m)}, ef_construction = {int(hnsw_ef_construction)})",
        f"CREATE INDEX IF NOT EXISTS {table}_tsv ON {table} USING gin (tsv)",
        f"CREATE INDEX IF NOT EXISTS {table}_published ON {table} (published)",
        f"CREATE INDEX IF NOT EXISTS {table}_meta ON {table} USING gin (meta_folded jsonb_path_ops)",
    ]


# Versioned migrations: (version, what it does, statements given the vector dimension and HNSW knobs).
MIGRATIONS = [(1, "documents, chunks (vector, tsvector, term frequencies), rag_meta, rag_stats", _schema_v1)]


def schema_version(conn: psycopg.Connection) -> int:
    row = conn.execute("SELECT to_regclass('rag_schema') IS NOT NULL").fetchone()
    if not row[0]:
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM rag_schema").fetchone()[0])


def migrate(conn: psycopg.Connection, *, dim: int, hnsw_m: int = 16, hnsw_ef_construction: int = 64) -> int:
    """Bring the schema to SCHEMA_VERSION in one transaction (concurrent callers wait for the first)."""
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (INGEST_LOCK,))
        conn.execute("""CREATE TABLE IF NOT EXISTS rag_schema (version int PRIMARY KEY, description text NOT NULL,
                        applied timestamptz NOT NULL DEFAULT now())""")
        have = schema_version(conn)
        if have > SCHEMA_VERSION:
            raise IndexMismatchError(f"the store's schema is version {have}, newer than this code's "
                                     f"{SCHEMA_VERSION}; upgrade the application")
        for version, description, statements in MIGRATIONS:
            if version <= have:
                continue
            sharded = conn.execute("SELECT relkind = 'p' FROM pg_class WHERE oid = to_regclass('chunks')").fetchone()
            for sql in statements(dim, hnsw_m, hnsw_ef_construction, bool(sharded and sharded[0])):
                conn.execute(sql)
            conn.execute("INSERT INTO rag_schema (version, description) VALUES (%s, %s)", (version, description))
    _register_vector(conn)
    return SCHEMA_VERSION


def read_meta(conn: psycopg.Connection) -> dict[str, Any]:
    return {k: v for k, v in conn.execute("SELECT key, value FROM rag_meta")}


def check_meta(meta: dict[str, Any], *, embedder_id: str, chunking: dict, where: str) -> None:
    """The store's chunks were made with these settings, or the caller is told how to rebuild."""
    base.check_compatible(meta, embedder_id=embedder_id, chunking=chunking, where=f"the store {where}", unset_ok=True)


# -- rows ------------------------------------------------------------------------------------------
def lexical_text(chunk: Chunk) -> str:
    # As the embedded index: the title names who and what the article is about.
    return f"{chunk.title}\n{chunk.text}" if chunk.title else chunk.text


def _lexeme(token: str) -> str:
    return "'" + token.replace("\\", "\\\\").replace("'", "''") + "'"


def tsvector_literal(tokens: Sequence[str]) -> str:
    """Our own tokens as a tsvector (lexemes only: the GIN index finds the chunks holding a term)."""
    return " ".join(_lexeme(t) for t in dict.fromkeys(tokens))


def term_frequencies(tokens: Sequence[str]) -> dict[str, int]:
    """How often each token occurs: BM25's tf, looked up by key (jsonb) for the query's terms only."""
    return dict(Counter(tokens))


def published_of(metadata: dict[str, Any]) -> str:
    return str(metadata.get("published") or "")[:10]


def metadata_json(metadata: Any) -> dict[str, Any]:
    return json.loads(json.dumps(dict(metadata), ensure_ascii=False, default=str))


# -- the read path ---------------------------------------------------------------------------------
CHUNK_COLUMNS = "c.doc_id, c.chunk_id, c.start_at, c.end_at, c.text, c.title, c.metadata"


def as_array(value: Any) -> np.ndarray:
    """A vector column as float32 (pgvector's adapter gives a Vector object or an ndarray)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _chunk(row: Sequence[Any]) -> Chunk:
    doc_id, chunk_id, start, end, text, title, metadata = row[:7]
    return Chunk(doc_id, chunk_id, start, end, text, title, metadata or {})


def filter_sql(filters: Filters | None) -> tuple[str, list[Any]]:
    """Filters as a predicate over chunks `c`, in PostgreSQL's dialect, their Access included: it
    applies inside the HNSW and GIN scans, as Access.denial reads the metadata."""
    where, args = base.filter_sql(filters, alias="c", param="%s", true="true", member=(
        "EXISTS (SELECT 1 FROM (SELECT {alias}.meta_folded -> {key} AS x) AS k, jsonb_array_elements_text("
        "CASE jsonb_typeof(k.x) WHEN 'array' THEN k.x ELSE jsonb_build_array(k.x) END) AS m(v) "
        "WHERE m.v IN ({values}))"))
    if filters is None or filters.access is None:
        return where, args
    rules = ("(lower(coalesce(c.metadata ->> 'status', '')) <> 'retracted'"
             " AND coalesce(c.metadata ->> 'embargo_until', '') <= %s"
             " AND (NOT (c.metadata ? 'desks') OR EXISTS (SELECT 1 FROM unnest(CASE jsonb_typeof(c.metadata -> 'desks')"
             " WHEN 'array' THEN ARRAY(SELECT jsonb_array_elements_text(c.metadata -> 'desks'))"
             " ELSE string_to_array(c.metadata ->> 'desks', ',') END) AS k(desk)"
             " WHERE lower(trim(k.desk)) = ANY(%s::text[]))))")
    return (rules if where == "true" else f"{where} AND {rules}"), [*args, filters.access.now,
                                                                  sorted(filters.access.desks)]


def _normalised(cte: str) -> str:
    # Min-max over the CTE's own candidates; all equal -> 1.0, as the embedded fusion does.
    return f"""SELECT doc_id, ord, CASE WHEN max(score) OVER () > min(score) OVER ()
                 THEN (score - min(score) OVER ()) / (max(score) OVER () - min(score) OVER ()) ELSE 1.0 END AS s
               FROM {cte}"""


def search_sql(mode: str, fusion: str, where: str) -> str:
    """The one statement behind a search. Placeholders: qvec, n, terms, qtf, tsq, alpha, filter args."""
    ctes: list[str] = []
    if mode != "lexical":
        ctes.append(f"""dense AS MATERIALIZED (
            SELECT c.doc_id, c.ord, -(c.embedding <#> %(qvec)s) AS score FROM chunks c
            WHERE {where.replace('%s', '%(f_dense)s')}
            ORDER BY c.embedding <#> %(qvec)s LIMIT %(n)s)""")
    if mode != "dense":
        ctes.append("""terms AS (SELECT * FROM unnest(%(terms)s::text[], %(qtf)s::int[]) AS t(term, qtf))""")
        ctes.append("""stats AS (SELECT greatest(n_chunks, 1)::float8 AS n,
                              greatest(n_tokens::float8 / greatest(n_chunks, 1), 1e-9) AS avgdl FROM rag_stats)""")
        # Every chunk holding a query term (GIN), whether the filters allow it or not: BM25's
        # document frequencies count the whole collection, as bm25s does before the mask.
        ctes.append(f"""matches AS MATERIALIZED (
            SELECT c.doc_id, c.ord, c.ntok, q.lexeme, q.tf, ({where.replace('%s', '%(f_lex)s')}) AS allowed
            FROM chunks c CROSS JOIN LATERAL (
                SELECT term AS lexeme, (c.tf ->> term)::float8 AS tf FROM unnest(%(terms)s::text[]) AS term) AS q
            WHERE c.tsv @@ %(tsq)s::tsquery AND q.tf IS NOT NULL)""")
        ctes.append("""df AS (SELECT lexeme, count(*)::float8 AS df FROM matches GROUP BY lexeme)""")
        ctes.append(f"""lexical AS MATERIALIZED (
            SELECT m.doc_id, m.ord,
                   sum(t.qtf * ln(1 + (s.n - df.df + 0.5) / (df.df + 0.5))
                       * m.tf / (m.tf + {K1} * (1 - {B} + {B} * m.ntok / s.avgdl))) AS score
            FROM matches m JOIN df USING (lexeme) JOIN terms t ON t.term = m.lexeme CROSS JOIN stats s
            WHERE m.allowed GROUP BY m.doc_id, m.ord ORDER BY score DESC LIMIT %(n)s)""")
    if mode == "dense":
        fused = "SELECT doc_id, ord, score, 0 AS tie FROM dense"
    elif mode == "lexical":
        fused = "SELECT doc_id, ord, score, 0 AS tie FROM lexical"
    elif fusion == "rrf":
        # RRF scores tie often (dense 3rd + lexical 5th = dense 5th + lexical 3rd); ties go in dense
        # rank order, then lexical, as the embedded fusion's stable sort leaves them.
        ctes.append("""ranked AS (
            SELECT doc_id, ord, row_number() OVER (ORDER BY score DESC) AS r, 0 AS side FROM dense
            UNION ALL
            SELECT doc_id, ord, row_number() OVER (ORDER BY score DESC) AS r, 1 AS side FROM lexical)""")
        fused = f"""SELECT doc_id, ord, sum(1.0 / ({RRF_K} + r)) AS score, min(side * 1000000 + r) AS tie
                    FROM ranked GROUP BY doc_id, ord"""
    else:
        ctes.append(f"dn AS ({_normalised('dense')})")
        ctes.append(f"ln AS ({_normalised('lexical')})")
        fused = ("""SELECT doc_id, ord, %(alpha)s * coalesce(dn.s, 0) + (1 - %(alpha)s) * coalesce(ln.s, 0) """
                 """AS score, 0 AS tie
                   FROM dn FULL JOIN ln USING (doc_id, ord)""")
    ctes.append(f"fused AS ({fused})")
    # The = ANY(ARRAY(...)) conditions are implied by the join; they are there for a sharded store,
    # where they go to each shard as one indexed lookup instead of a scan of its whole table.
    return (f"WITH {', '.join(ctes)}\n"
            f"SELECT {CHUNK_COLUMNS}, c.embedding, f.score FROM fused f JOIN chunks c USING (doc_id, ord)\n"
            f"WHERE c.doc_id = ANY(ARRAY(SELECT doc_id FROM fused)) AND c.ord = ANY(ARRAY(SELECT ord FROM fused))\n"
            f"ORDER BY f.score DESC, f.tie, c.doc_id, c.ord LIMIT %(n)s")


def _query_terms(query: str) -> tuple[list[str], list[int]]:
    """Folded, stemmed query tokens, with their other spellings of "đ" (rag/text.py), and how often
    each occurs (bm25s counts a repeated token twice)."""
    counts = Counter(query_tokens(query))
    return list(counts), list(counts.values())


class PostgresStore:
    """The Store role over a PostgreSQL server (a primary, a streaming replica, or a shard coordinator)."""

    def __init__(self, url: str, *, embedder_id: str | None = None, chunking: dict | None = None,
                 ef_search: int = 128, pool_size: int = 4) -> None:
        from psycopg_pool import ConnectionPool

        self.url = url
        self.where = safe_url(url)
        self.ef_search = ef_search
        self._rules: tuple[str, base.Ruled] | None = None

        def configure(conn: psycopg.Connection) -> None:
            _register_vector(conn)
            # Filters apply inside the HNSW scan (pgvector 0.8 iterative scans), so a selective
            # filter still gets its n nearest rather than the allowed few of the first ef_search.
            conn.execute("SELECT set_config('hnsw.ef_search', %s, false), "
                         "set_config('hnsw.iterative_scan', 'strict_order', false)", (str(int(ef_search)),))

        with connect(url, autocommit=True) as conn:  # fail here, with the URL named, not in a pool thread
            if schema_version(conn) == 0:
                raise IndexError_(f"no index in the store {self.where}; build one with `rag ingest`")
            self.meta = read_meta(conn)
        if embedder_id is not None:
            check_meta(self.meta, embedder_id=embedder_id, chunking=chunking or self.meta.get("chunking"),
                       where=self.where)
        self._pool = ConnectionPool(url, min_size=1, max_size=max(1, pool_size), kwargs={"autocommit": True},
                                    configure=configure, open=True, name="rag-store")

    def close(self) -> None:
        self._pool.close()

    def _rows(self, sql: str, args: Any = None) -> list[tuple]:
        import psycopg

        try:
            with self._pool.connection() as conn:
                return conn.execute(sql, args).fetchall()
        except psycopg.Error as exc:
            raise IndexError_(f"the store {self.where} failed: {exc}".strip()) from exc

    def search(self, query: str, qvec: np.ndarray | None, n: int, *, mode: str, fusion: str, alpha: float,
               filters: Filters | None = None) -> list[Candidate]:
        if mode not in ("dense", "lexical", "hybrid") or fusion not in ("rrf", "weighted"):
            raise ConfigError(f"unknown retrieval mode {mode!r} or fusion {fusion!r}")
        terms, qtf = _query_terms(query)
        if mode == "lexical" and not terms:
            return []
        if mode == "hybrid" and not terms:  # no query term can match: fuse the dense side with nothing
            dense = self.search(query, qvec, n, mode="dense", fusion=fusion, alpha=alpha, filters=filters)
            fused = (rrf if fusion == "rrf" else lambda d: weighted(d, {}, alpha))(
                {i: c.score for i, c in enumerate(dense)})
            return [Candidate(c.chunk, fused[i], c.vector) for i, c in enumerate(dense)]
        where, fargs = filter_sql(filters)
        sql = search_sql(mode, fusion, where)
        args: dict[str, Any] = {"n": int(n), "alpha": float(alpha)}
        if mode != "lexical":
            args["qvec"] = np.asarray(qvec, dtype=np.float32)
        if mode != "dense":
            args.update(terms=terms, qtf=qtf, tsq=" | ".join(_lexeme(t) for t in terms))
        # Named placeholders per use: psycopg binds each filter value once per CTE it appears in.
        sql = _number_filter_args(sql, fargs, args)
        rows = self._rows(sql, args)
        return [Candidate(_chunk(r), float(r[8]), as_array(r[7])) for r in rows]

    def ruled(self) -> base.Ruled:
        """The documents with rules, read again when the store's content changes."""
        version = self.version
        held = self._rules
        if held is None or held[0] != version:
            rows = self._rows("SELECT doc_id, metadata, n_chunks FROM documents "
                              "WHERE metadata ?| array['status', 'embargo_until', 'desks']")
            held = self._rules = (version, base.Ruled((d, m or {}, int(n)) for d, m, n in rows))
        return held[1]

    def document_ids(self) -> list[str]:
        return [r[0] for r in self._rows("SELECT doc_id FROM documents ORDER BY doc_id")]

    def document_chunks(self, doc_id: str) -> list[Chunk]:
        rows = self._rows(f"SELECT {CHUNK_COLUMNS} FROM chunks c WHERE c.doc_id = %s ORDER BY c.ord", (doc_id,))
        return [_chunk(r) for r in rows]

    def counts(self) -> dict[str, int]:
        docs, chunks = self._rows("SELECT count(*), coalesce(sum(n_chunks), 0) FROM documents")[0]
        return {"documents": int(docs), "chunks": int(chunks)}

    @property
    def version(self) -> str:
        count, last = self._rows("SELECT count(*), max(updated) FROM documents")[0]
        # No "/" after the database name: /api/health shows only the last path part (no host).
        return f"{self.where}@{last.isoformat() if last else '-'}#{count}"


def _number_filter_args(sql: str, fargs: list[Any], args: dict[str, Any]) -> str:
    """Turn each CTE's run of %(f_<cte>)s placeholders into distinct named ones bound to `fargs`."""
    for cte in ("dense", "lex"):
        marker = f"%(f_{cte})s"
        i = 0
        while marker in sql:
            name = f"f_{cte}_{i}"
            sql = sql.replace(marker, f"%({name})s", 1)
            args[name] = fargs[i]
            i += 1
    return sql
