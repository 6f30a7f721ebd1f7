"""Search-box text in chapter 2: FTS5 query quoting, and what raw input does to MATCH, side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

if TYPE_CHECKING:
    import pandas as pd


def fts5_query(search_box: str) -> str:
    """Search-box text as an FTS5 query that only ever means "all of these words".

    FTS5 parses MATCH's argument as its own query language (AND, OR, NOT, NEAR, column filters,
    prefix *, "phrases"). Each whitespace-separated term becomes a quoted string, with any double
    quote inside doubled, so punctuation is just text to the tokenizer; terms are ANDed.
    """
    terms = search_box.split()
    return " ".join('"' + term.replace('"', '""') + '"' for term in terms)


async def compare_match(engine: AsyncEngine, table: str, inputs: list[str]) -> pd.DataFrame:
    """For each input: what MATCH does with it raw, and with fts5_query(input) (rows found, or the error)."""
    import pandas as pd

    results = []
    async with engine.connect() as conn:
        for raw in inputs:
            row = {"search box": raw}
            for label, query in (("raw MATCH", raw), ("quoted MATCH", fts5_query(raw))):
                try:
                    found = await conn.scalar(
                        text(f"SELECT count(*) FROM {table} WHERE {table} MATCH :q"), {"q": query}
                    )
                    row[label] = f"{found} rows"
                except DBAPIError as exc:
                    # The driver's message, first line only: what a user of the endpoint would get as a 500.
                    row[label] = "error: " + str(exc.orig).splitlines()[0]
                    await conn.rollback()
            row["query sent when quoted"] = fts5_query(raw)
            results.append(row)
    return pd.DataFrame(results)
