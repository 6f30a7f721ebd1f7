"""Columns of text and timestamps for the seed, built a whole column at a time (numpy does the per-row work)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from course.seed.streams import Stream


@dataclass(frozen=True)
class Vocabulary:
    """The committed word lists in data/: words for text, first and last names for people."""

    words: list[str]
    first_names: list[str]
    last_names: list[str]

    @staticmethod
    @cache
    def load(folder: Path) -> Vocabulary:
        def read(name: str) -> list[str]:
            return (folder / name).read_text(encoding="utf-8").split()

        return Vocabulary(read("words.txt"), read("first_names.txt"), read("last_names.txt"))

    @staticmethod
    def pick(choices: list[str], stream: Stream, n: int) -> list[str]:
        """n entries of choices, drawn uniformly with replacement."""
        return [choices[i] for i in stream.integers(0, len(choices), n).tolist()]

    def sentences(self, stream: Stream, n: int, low: int, high: int) -> list[str]:
        """n strings of low..high words each (inclusive), words drawn uniformly from the vocabulary."""
        counts = stream.integers(low, high + 1, n)
        picked = stream.integers(0, len(self.words), int(counts.sum()))
        # One join over every word of every row, then one slice per row: the per-row work is a single slice.
        table, sizes = _word_arrays(tuple(self.words))
        text = " ".join(table[picked].tolist())
        lengths = sizes[picked]
        word_start = np.cumsum(lengths + 1) - (lengths + 1)
        last_word = np.cumsum(counts) - 1
        first_word = last_word - counts + 1
        starts = word_start[first_word].tolist()
        ends = (word_start[last_word] + lengths[last_word]).tolist()
        return [text[a:b] for a, b in zip(starts, ends, strict=True)]


@cache
def _word_arrays(words: tuple[str, ...]) -> tuple[np.ndarray, np.ndarray]:
    """The words as a numpy object array (so picking millions of them is one C loop) and their lengths."""
    return np.array(words, dtype=object), np.array([len(w) for w in words], dtype=np.int64)


# PostgreSQL stores timestamptz as int64 microseconds since this instant: its binary COPY form.
PG_EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def encode_times(seconds: np.ndarray, base: datetime, backend: str) -> list:
    """Timestamps `seconds` after base, as the target driver stores them.

    SQLite: the exact text SQLAlchemy's DateTime writes ("YYYY-MM-DD HH:MM:SS.ffffff"), so ORM reads and comparisons
    agree with the seed. PostgreSQL: timestamptz's binary form, int64 microseconds since 2000-01-01 UTC, which the
    seed's loader sends as they are (course/seed/pg_load.py: binary_timestamps); building a datetime per value and
    having asyncpg convert it back cost ~1 s of Python per million timestamps.
    """
    if backend == "sqlite":
        stamps = np.datetime64(base.astimezone(UTC).replace(tzinfo=None), "us") + seconds.astype("timedelta64[s]")
        text = np.datetime_as_string(stamps, unit="us").astype("S26")
        # ISO puts a "T" between date and time; SQLAlchemy's SQLite format a space.
        text.view(np.uint8).reshape(-1, 26)[:, 10] = ord(" ")
        return text.astype(str).tolist()
    offset = int((base - PG_EPOCH).total_seconds())
    return ((seconds.astype(np.int64) + offset) * 1_000_000).tolist()
