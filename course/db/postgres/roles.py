"""Least-privilege PostgreSQL: copies owned by a login role of their own, templates nobody else may reach or disable.

A copy made here belongs to a new role named like the copy (random password, no superuser, no CREATEDB, no
CREATEROLE) that owns the copy database and every object in it, and that is the only role (besides superusers)
with CONNECT on it. Dropping the copy drops the role (course/db/postgres/admin.py `drop_database`).
"""

from __future__ import annotations

import secrets

import asyncpg
from sqlalchemy.engine import URL

from course import db
from course.db.postgres import admin as pg_admin
from course.db.postgres import owners
from course.errors import CourseError

# Roles made here say so in their COMMENT, so only they are ever dropped along with a database of the same name.
ROLE_COMMENT = pg_admin.COPY_ROLE_COMMENT


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


async def create_role(conn: asyncpg.Connection, name: str, *, createdb: bool = False) -> str:
    """A new login role `name` with a random password and no other power; return the password."""
    password = secrets.token_urlsafe(24)
    extra = "CREATEDB" if createdb else "NOCREATEDB"
    # CREATE ROLE takes no parameters: the server quotes the password (%L), we quote the generated name.
    sql = await conn.fetchval(
        f"SELECT format('CREATE ROLE %I LOGIN PASSWORD %L NOSUPERUSER {extra} NOCREATEROLE NOREPLICATION "
        "NOBYPASSRLS NOINHERIT', $1::text, $2::text)",
        name,
        password,
    )
    await conn.execute(sql)
    await conn.execute(f"COMMENT ON ROLE {quote(name)} IS '{ROLE_COMMENT}'")
    return password


# Every object of the schemas a copy holds (tables, sequences, views, types, routines) changes owner: lessons and
# checks create indexes, alter and drop tables, which only an owner may do.
_HAND_OVER = """
DO $$
DECLARE item record;
BEGIN
  FOR item IN SELECT c.oid::regclass AS name FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
              WHERE n.nspname = 'public' AND (c.relkind IN ('r', 'p', 'v', 'm', 'f') OR c.relkind = 'S' AND NOT EXISTS
                (SELECT 1 FROM pg_depend AS d WHERE d.objid = c.oid AND d.deptype IN ('a', 'i'))) LOOP
    -- (A sequence that belongs to a column follows its table.)
    EXECUTE format('ALTER TABLE %s OWNER TO {role}', item.name);
  END LOOP;
  FOR item IN SELECT t.oid::regtype AS name FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace
              WHERE n.nspname = 'public' AND t.typtype IN ('e', 'd', 'r') LOOP
    EXECUTE format('ALTER TYPE %s OWNER TO {role}', item.name);
  END LOOP;
  FOR item IN SELECT p.oid::regprocedure AS name FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
              WHERE n.nspname = 'public' LOOP
    EXECUTE format('ALTER ROUTINE %s OWNER TO {role}', item.name);
  END LOOP;
END $$;
ALTER SCHEMA public OWNER TO {role};
"""


async def hand_over(admin_to_database: str | URL, role: str) -> None:
    """Make role the owner of the database admin_to_database names and of everything in its public schema."""
    parsed = db.parse_url(admin_to_database)
    conn = await pg_admin.connect(parsed.set(database="postgres"))
    try:
        await conn.execute(f"ALTER DATABASE {quote(parsed.database or '')} OWNER TO {quote(role)}")
        # New databases give CONNECT and TEMP to PUBLIC: only the owner (and superusers) may connect.
        await conn.execute(f"REVOKE ALL ON DATABASE {quote(parsed.database or '')} FROM PUBLIC")
    finally:
        await conn.close()
    conn = await pg_admin.connect(parsed)
    try:
        await conn.execute(_HAND_OVER.replace("{role}", quote(role)))
    finally:
        await conn.close()


async def copy_with_role(template_url: str | URL, name: str, *, owner: owners.Owner | None = None) -> str:
    """Copy the template into database `name`, owned by a new role `name`; return the URL that logs in as it."""
    parsed = db.parse_url(template_url)
    admin = parsed.set(database="postgres")
    conn = await pg_admin.connect(admin)
    try:
        password = await create_role(conn, name)
    except asyncpg.InsufficientPrivilegeError:
        raise CourseError("this PostgreSQL login may not create roles (it needs CREATEROLE)") from None
    finally:
        await conn.close()
    try:
        url = await pg_admin.copy_database(parsed, name, owner=owner)
        await hand_over(url, name)
    except BaseException:
        await pg_admin.drop_database(parsed.set(database=name))
        raise
    return db.async_url(parsed.set(database=name, username=name, password=password)).render_as_string(
        hide_password=False
    )


async def lock_template(url: str | URL) -> None:
    """Nobody but superusers (and the template's owner) may connect to the template or create objects in it."""
    parsed = db.parse_url(url)
    conn = await pg_admin.connect(parsed.set(database="postgres"))
    try:
        await conn.execute(f"REVOKE ALL ON DATABASE {quote(parsed.database or '')} FROM PUBLIC")
    except asyncpg.InsufficientPrivilegeError:
        pass  # a seed in a database this login does not own: its owner decides who may connect
    finally:
        await conn.close()


async def reopen(url: str | URL) -> list[str]:
    """Undo what a hostile session may have done to the database itself (not its rows); return what was undone.

    ALTER DATABASE ... ALLOW_CONNECTIONS false or CONNECTION LIMIT 0 would make every later copy (and seeding)
    fail; an owner other than the admin login could change them again. Only a superuser (or the owner) can do this.
    """
    parsed = db.parse_url(url)
    name = parsed.database or ""
    conn = await pg_admin.connect(parsed.set(database="postgres"))
    fixed = []
    try:
        row = await conn.fetchrow(
            "SELECT datallowconn, datconnlimit, datistemplate, datdba = (SELECT oid FROM pg_roles "
            "WHERE rolname = current_user) AS ours FROM pg_database WHERE datname = $1",
            name,
        )
        if row is None:
            return []
        if not row["datallowconn"]:
            await conn.execute(f"ALTER DATABASE {quote(name)} ALLOW_CONNECTIONS true")
            fixed.append("connections were disallowed")
        if row["datconnlimit"] != -1:
            await conn.execute(f"ALTER DATABASE {quote(name)} CONNECTION LIMIT -1")
            fixed.append(f"connection limit was {row['datconnlimit']}")
        if row["datistemplate"]:
            await conn.execute(f"ALTER DATABASE {quote(name)} IS_TEMPLATE false")
            fixed.append("it was marked as a template")
        if not row["ours"]:
            await conn.execute(f"ALTER DATABASE {quote(name)} OWNER TO CURRENT_USER")
            fixed.append("it had another owner")
    except asyncpg.InsufficientPrivilegeError as exc:
        raise CourseError(f"cannot restore access to {name!r}: {pg_admin.one_line(exc)}") from None
    finally:
        await conn.close()
    return fixed


async def end_other_sessions(url: str | URL) -> int:
    """Disconnect every session on the database except ours (a session held open blocks copying it)."""
    parsed = db.parse_url(url)
    conn = await pg_admin.connect(parsed.set(database="postgres"))
    try:
        return int(
            await conn.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                parsed.database,
            )
        )
    finally:
        await conn.close()
