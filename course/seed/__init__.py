"""The seeded database: deterministic rows (generate), bulk loading (load), status and fresh copies (fresh)."""

from course.seed.load import SeedReport, seed, seed_url
from course.seed.status import SeedStatus, content_checksum, ensure_seed, read_meta, status

__all__ = [
    "SeedReport",
    "SeedStatus",
    "content_checksum",
    "ensure_seed",
    "read_meta",
    "seed",
    "seed_url",
    "status",
]
