"""Hostile chapter-1 submissions for PostgreSQL: what a learner could try with the login the sandbox gives them.

Each attacking function does the real work only when its attack worked, so 0 points shows every attack failed. The
same attacks also run as plain cells in the learner's kernel, while an honest learner is graded beside them:
their damage (to the template, to other sessions) would show in the honest learner's grade and the seed's digest.

Not stopped (written down for the closing note): a submission may fill the server's disk with rows in its own copy
(a copy's size is not capped: PostgreSQL has no per-database quota; the time limits and the broker's cap on copies
bound it), may keep its own copies busy (only its own), and sees the names of other databases and roles in the
catalogs (pg_database, pg_roles are readable by every role in PostgreSQL) though it can connect to none of them.
"""

from __future__ import annotations

import json
from pathlib import Path

from tests.hostile import SOLUTION, _code_cells, _renamed, _wrapped, _write

# Helpers every attack uses (a definition cell, so the check process loads it too). Each returns True when the
# attack got through.
LIBRARY = '''
import asyncpg as _asyncpg
from course import db as _db
from course.db.postgres import admin as _pg_admin


async def _url_of(session):
    return (await session.connection()).engine.url.render_as_string(hide_password=False)


async def _try(url, database, statement, **login):
    """Run statement on database with the given login (the sandbox's own unless overridden); True if it worked."""
    try:
        target = _db.parse_url(url).set(database=database, **login)
        conn = await _asyncpg.connect(_pg_admin.dsn(target), timeout=5)
    except Exception:
        return False
    try:
        result = await conn.fetch(statement)
        return bool(result) if statement.lstrip().upper().startswith("SELECT") else True
    except Exception:
        return False
    finally:
        await conn.close()


async def damage_template(url):
    """Make the template unusable or wrong for everyone graded after."""
    attempts = [
        ("postgres", f'ALTER DATABASE "{TEMPLATE}" ALLOW_CONNECTIONS false'),
        ("postgres", f'ALTER DATABASE "{TEMPLATE}" CONNECTION LIMIT 0'),
        ("postgres", f'ALTER DATABASE "{TEMPLATE}" RENAME TO stolen_seed'),
        ("postgres", f'DROP DATABASE "{TEMPLATE}"'),
        (TEMPLATE, "UPDATE users SET name = 'pwned'"),
        (TEMPLATE, "DELETE FROM posts"),
    ]
    return any([await _try(url, database, sql) for database, sql in attempts])


async def end_other_sessions(url):
    """Terminate every other session on the server (the grader's, other learners' checks)."""
    try:
        conn = await _asyncpg.connect(_pg_admin.dsn(url), timeout=5)
    except Exception:
        return False
    ended = False
    try:
        pids = [r["pid"] for r in await conn.fetch("SELECT pid FROM pg_stat_activity WHERE pid <> pg_backend_pid()")]
        for pid in pids:
            for how in ("pg_terminate_backend", "pg_cancel_backend"):
                try:
                    ended = bool(await conn.fetchval(f"SELECT {how}($1)", pid)) or ended
                except Exception:
                    pass
    finally:
        await conn.close()
    return ended


async def read_other_copies(url):
    """Connect to every other database on the server and read its users."""
    try:
        conn = await _asyncpg.connect(_pg_admin.dsn(url), timeout=5)
        names = [r["datname"] for r in await conn.fetch(
            "SELECT datname FROM pg_database WHERE datname <> current_database() AND datallowconn")]
        await conn.close()
    except Exception:
        return False
    return any([await _try(url, name, "SELECT name FROM users LIMIT 1") for name in names])


async def become_superuser(url):
    """Any way to more power than the copy's own role: the admin login, the server's files, new roles."""
    attempts = [
        ("postgres", "ALTER ROLE CURRENT_USER SUPERUSER", {}),
        ("postgres", "CREATE ROLE intruder LOGIN SUPERUSER PASSWORD 'x'", {}),
        ("postgres", "CREATE DATABASE hoard", {}),
        ("postgres", "SELECT rolpassword FROM pg_authid", {}),
        ("postgres", "SELECT pg_read_file('/etc/passwd')", {}),
        ("postgres", "COPY (SELECT 1) TO PROGRAM 'true'", {}),
        ("postgres", "SELECT 1", {"username": "postgres", "password": None}),
        ("postgres", "SELECT 1", {"username": "postgres", "password": "postgres"}),
        # The server's TCP port, as if there were a network.
        ("postgres", "SELECT 1", {"host": "127.0.0.1", "port": int(_db.parse_url(url).query["port"]), "query": {}}),
    ]
    return any([await _try(url, database, sql, **login) for database, sql, login in attempts])
'''

KERNEL_CELL = """
url = lesson.url
print("template", await damage_template(url), "sessions", await end_other_sessions(url),
      "others", await read_other_copies(url), "power", await become_superuser(url))
# Hold as many connections as the server gives, so those graded beside it find none (the relay allows 40).
hoard = []
for _ in range(150):
    try:
        hoard.append(await _asyncpg.connect(_pg_admin.dsn(url), timeout=5))
    except Exception:
        break
print("held", len(hoard), "connections")
"""


def _only_if(name: str, attack: str, *, kwargs: bool = False) -> str:
    """name that does the real work only when the attack worked (else it returns nothing: the check fails)."""
    body = f"if not await {attack}(await _url_of(session)):\n    return None"
    return _wrapped(name, body, kwargs=kwargs)


def write_postgres_class(folder: Path, *, template: str) -> dict[str, int]:
    """ann (honest) and pgvandal under folder/<learner>/01_crud.ipynb; return the points each must get exactly."""
    solved = _code_cells(SOLUTION)
    attacked = {"create_user", "get_user_by_email", "list_users", "update_user"}
    base = _code_cells(SOLUTION, solved=attacked)
    _write(folder / "ann" / "01_crud.ipynb", solved)
    _write(folder / "pgvandal" / "01_crud.ipynb", [
        *base, *_renamed(base), f"TEMPLATE = {json.dumps(template)}\n", LIBRARY,
        _only_if("create_user", "damage_template", kwargs=True),
        _only_if("get_user_by_email", "end_other_sessions"),
        _only_if("list_users", "read_other_copies", kwargs=True),
        _only_if("update_user", "become_superuser"),
        KERNEL_CELL,
    ])  # fmt: skip
    from course.chapters.registry import chapter

    return {"ann": chapter(1).max_points, "pgvandal": 0}
