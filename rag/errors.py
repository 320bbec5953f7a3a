"""One exception family for the engine: callers catch RagError."""


class RagError(Exception):
    """Base class of every error the engine raises on purpose."""


class ConfigError(RagError):
    """A setting has a value the engine cannot use."""


class LoadError(RagError):
    """A source file cannot be read as an article (the message names the file and line)."""


class IngestError(RagError):
    """An ingest refused to run: nothing usable to add, or it would remove too much."""


class IndexError_(RagError):
    """The index on disk is missing, corrupt, or was built with other settings."""


class IndexMismatchError(IndexError_):
    """The index was built with another embedder or chunking; rebuild with --rebuild."""


class ModelError(RagError):
    """A model cannot be found, loaded or reached."""


class GenerationError(ModelError):
    """A generator backend failed while producing text."""
