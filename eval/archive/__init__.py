"""A real-archive benchmark: the archive built from packaged text, and questions over it."""
