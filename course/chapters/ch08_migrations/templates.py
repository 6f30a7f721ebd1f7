"""The files a private migrations folder starts with: an async env.py and the template for new revisions."""

from __future__ import annotations

ENV_PY = '''"""Alembic's entry point for this folder: runs migrations through an async engine (aiosqlite or asyncpg)."""

import asyncio

from alembic import context
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

config = context.config
# The models' MetaData, handed over by whoever drives Alembic (course/chapters/ch08_migrations/workspace.py).
target_metadata = config.attributes.get("target_metadata")


def include_name(name, type_, parent_names):
    # This folder manages the tables of its models only; the rest of the database belongs to someone else.
    if type_ == "table" and target_metadata is not None:
        return name in target_metadata.tables or name == "alembic_version"
    return True


def configure(**extra):
    url = config.get_main_option("sqlalchemy.url")
    context.configure(
        target_metadata=target_metadata,
        include_name=include_name,
        # Off by default in Alembic: without it a changed server default goes unnoticed.
        compare_server_default=config.attributes.get("compare_server_default", True),
        # SQLite cannot ALTER most things: batch mode copies the table instead (create, copy, drop, rename).
        render_as_batch=url.startswith("sqlite"),
        **extra,
    )


def run_offline():
    """`upgrade --sql`: print the SQL instead of running it (for a DBA to review, or a deploy without Python)."""
    configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_with(connection):
    hook = config.attributes.get("on_connection")
    if hook is not None:
        hook(connection)
    configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


async def run_online():
    # NullPool: a migration run is short and alone, so no connection should outlive it.
    engine = create_async_engine(config.get_main_option("sqlalchemy.url"), poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            # Alembic's API is synchronous: run it on the async connection's sync facade.
            await connection.run_sync(run_with)
    finally:
        await engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    asyncio.run(run_online())
'''

SCRIPT_MAKO = '''"""${message}

Revision ID: ${up_revision}
Revises: ${down_revision | comma,n}
Create Date: ${create_date}
"""

from alembic import op
import sqlalchemy as sa
${imports if imports else ""}

revision = ${repr(up_revision)}
down_revision = ${repr(down_revision)}
branch_labels = ${repr(branch_labels)}
depends_on = ${repr(depends_on)}


def upgrade() -> None:
    ${upgrades if upgrades else "pass"}


def downgrade() -> None:
    ${downgrades if downgrades else "pass"}
'''
