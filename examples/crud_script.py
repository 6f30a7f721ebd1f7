"""Chapter 1's CRUD outside Jupyter: the same async code, run as a plain Python script.

    python examples/crud_script.py              # on a fresh copy of the course's seed, dropped at the end
    python examples/crud_script.py --url URL    # on any database (sqlite+aiosqlite:///... or postgresql+asyncpg://...)

A notebook cell may `await` because Jupyter already runs an event loop. A script has none: `asyncio.run(main())`
starts one, runs main() to the end and closes the loop. The engine keeps a pool of open connections, so the script
closes them with `await engine.dispose()` while the loop still runs; otherwise they would be cut off when it stops.
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from datetime import UTC, datetime

from sqlalchemy import func, select

from course.db import make_engine, make_sessionmaker
from course.domain.models import Base, User
from course.domain.schemas import UserUpdate
from course.domain.security import hash_password


async def crud(url: str) -> None:
    """Create, read, update and soft-delete one user; print what happened at each step."""
    # make_engine adds the SQLite listeners of lesson 1.1 (foreign keys, real transactions); PostgreSQL needs none.
    engine = make_engine(url=url)
    try:
        async with engine.begin() as conn:
            # Creates the tables on an empty database; tables that exist are left alone.
            await conn.run_sync(Base.metadata.create_all)
        Session = make_sessionmaker(engine)
        email = f"script.{uuid.uuid4().hex[:8]}@example.com"

        async with Session() as session, session.begin():
            user = User(email=email, name="Script User", password_hash=hash_password("a long passphrase"))
            session.add(user)
            await session.flush()
            print(f"created user {user.id} ({email})")

        live = select(User).where(User.email == email, User.deleted_at.is_(None))
        async with Session() as session, session.begin():
            found = await session.scalar(live)
            assert found is not None
            for field, value in UserUpdate(name="Renamed User").model_dump(exclude_unset=True).items():
                setattr(found, field, value)
            print(f"renamed user {found.id} to {found.name!r}")

        async with Session() as session, session.begin():
            found = await session.scalar(live)
            assert found is not None
            found.deleted_at = datetime.now(UTC)
            print(f"soft-deleted user {found.id}")

        async with Session() as session:
            left = await session.scalar(select(func.count()).select_from(live.subquery()))
            kept = await session.scalar(select(func.count()).select_from(User).where(User.email == email))
        print(f"live users with that email: {left}; rows kept in the table: {kept}")
    finally:
        await engine.dispose()


async def on_fresh_copy() -> None:
    # Imported here: the seed machinery (numpy, the loader) is needed only without --url.
    from course.seed.fresh import fresh_copy

    async with fresh_copy() as copy:
        await crud(copy.url)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an async SQLAlchemy URL; default: a fresh copy of the course's seed")
    args = parser.parse_args()
    asyncio.run(crud(args.url) if args.url else on_fresh_copy())


if __name__ == "__main__":
    main()
