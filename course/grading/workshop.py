"""Workshop mode: on a shared PostgreSQL, one database and one login role per learner, made from the verified seed.

Each learner's role owns their database and everything in it, has its own random password, no superuser and no
CREATEROLE; it has CREATEDB so that the learner's lessons and checks can copy their own database (PostgreSQL lets
a role copy only a database it owns, so never another learner's or the seed). CONNECT is revoked from PUBLIC on the
template and on every learner database, so a learner cannot connect to another's database, let alone read it. The
instructor gets a CSV (learner, role, database, url) to hand each learner their COURSE_DATABASE_URL, and passes the
same CSV to `course grade --urls` and `course workshop teardown`.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import astuple, dataclass, fields
from pathlib import Path

import asyncpg

from course import db
from course.db import aio
from course.db.postgres import admin as pg_admin
from course.db.postgres import roles
from course.errors import CourseError
from course.settings import get_settings

PREFIX = "course_ws_"
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")


@dataclass(frozen=True)
class Seat:
    """One learner's place in a workshop: a row of the CSV."""

    learner: str
    role: str
    database: str
    url: str


def learner_names(*, count: int | None, names_file: Path | None) -> list[str]:
    """The learners' names: from a file (one per line), else learner01..learnerNN."""
    if names_file is not None:
        try:
            lines = names_file.read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise CourseError(f"cannot read {names_file}: {exc.strerror or exc}") from None
        names = [line.strip().lower() for line in lines if line.strip() and not line.startswith("#")]
    elif count is not None and count > 0:
        names = [f"learner{i:02d}" for i in range(1, count + 1)]
    else:
        raise CourseError("say how many learners (--learners N) or who they are (--names FILE)")
    if count is not None and names_file is not None and len(names) != count:
        raise CourseError(f"{names_file} names {len(names)} learners, not {count}")
    bad = [name for name in names if not NAME_RE.match(name)]
    if bad:
        raise CourseError(
            f"learner names must be lower-case letters, digits and _ (up to 40, starting with a letter): {bad[0]!r}"
        )
    if len(set(names)) != len(names):
        raise CourseError("a learner name appears twice")
    return names


def template_url(admin: str, scale: str) -> str:
    """The seed template on the workshop's server."""
    return db.parse_url(admin).set(database=f"course_seed_{scale}").render_as_string(hide_password=False)


def verified_template(admin: str, scale: str) -> str:
    """The seed on the workshop's server, built when missing and verified (rebuilt when damaged)."""
    from course.seed.verify import verified_seed

    settings = get_settings(scale=scale, backend="postgres", database_url=template_url(admin, scale))
    return verified_seed(settings, full=True, announce=True)


async def _make_seat(admin: str, template: str, learner: str) -> Seat:
    name = f"{PREFIX}{learner}"
    conn = await pg_admin.connect(admin)
    try:
        if await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
            raise CourseError(f"role {name} already exists: tear the workshop down first, or choose other names")
        password = await roles.create_role(conn, name, createdb=True)
        # Marked as a workshop seat (not a per-copy role): only teardown removes it.
        await conn.execute(f"COMMENT ON ROLE {roles.quote(name)} IS 'course-workshop-seat'")
    finally:
        await conn.close()
    url = await pg_admin.copy_database(template, name)
    await roles.hand_over(url, name)
    parsed = db.parse_url(url).set(username=name, password=password)
    return Seat(learner, name, name, db.async_url(parsed).render_as_string(hide_password=False))


def provision(admin: str, learners: list[str], *, out: Path, scale: str = "small") -> list[Seat]:
    """Create every learner's role and database and write their URLs to out (mode 600: it holds passwords)."""
    if out.exists():
        raise CourseError(f"{out} exists: it may hold a workshop's passwords; give a new file")
    template = verified_template(admin, scale)
    aio.run(roles.lock_template(template))
    seats: list[Seat] = []
    try:
        for learner in learners:
            seats.append(aio.run(_make_seat(admin, template, learner)))
    except BaseException:
        aio.run(_remove([s.role for s in seats], admin))
        raise
    write_seats(out, seats)
    return seats


def write_seats(path: Path, seats: list[Seat]) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow([f.name for f in fields(Seat)])
        writer.writerows(astuple(seat) for seat in seats)


def read_seats(path: Path) -> list[Seat]:
    """The seats in a CSV written by provision."""
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
    except OSError as exc:
        raise CourseError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        seats = [Seat(r["learner"], r["role"], r["database"], r["url"]) for r in rows]
    except (KeyError, TypeError):
        raise CourseError(f"{path} is not a workshop CSV (columns learner, role, database, url)") from None
    for seat in seats:
        if not seat.role.startswith(PREFIX) or seat.database != seat.role:
            raise CourseError(f"{path}: {seat.role!r} is not a workshop seat made by `course workshop provision`")
    return seats


async def _remove(role_names: list[str], admin: str) -> list[str]:
    """Drop each role, every database it owns (its seat and its copies), and the role itself."""
    removed = []
    conn = await pg_admin.connect(admin)
    try:
        for name in role_names:
            if not await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", name):
                continue
            owned = await conn.fetch(
                "SELECT datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)",
                name,
            )
            for row in owned:
                await conn.execute(f"DROP DATABASE IF EXISTS {roles.quote(row['datname'])} WITH (FORCE)")
            await conn.execute(f"DROP DATABASE IF EXISTS {roles.quote(name)} WITH (FORCE)")
            try:
                await conn.execute(f"DROP OWNED BY {roles.quote(name)}")
                await conn.execute(f"DROP ROLE {roles.quote(name)}")
            except asyncpg.PostgresError as exc:
                raise CourseError(f"could not drop role {name}: {pg_admin.one_line(exc)}") from None
            removed.append(name)
    finally:
        await conn.close()
    return removed


def teardown(admin: str, seats_file: Path) -> list[str]:
    """Drop every seat listed in the CSV (databases, their copies, roles); return the roles dropped."""
    return aio.run(_remove([seat.role for seat in read_seats(seats_file)], admin))


def refresh(admin: str, seats: list[Seat], *, scale: str) -> None:
    """Before grading: each learner's database made again from the verified seed, so no edit of theirs counts."""
    template = verified_template(admin, scale)

    async def remake() -> None:
        conn = await pg_admin.connect(admin)
        try:
            for seat in seats:
                await conn.execute(f"DROP DATABASE IF EXISTS {roles.quote(seat.database)} WITH (FORCE)")
        finally:
            await conn.close()
        for seat in seats:
            await pg_admin.copy_database(template, seat.database)
            await roles.hand_over(db.parse_url(admin).set(database=seat.database), seat.role)

    aio.run(remake())


def grading_urls(seats_file: Path) -> dict[str, str]:
    """For `course grade --urls`: every seat's database made again from the verified seed; learner -> URL."""
    from course.db.postgres.admin import admin_url
    from course.seed.load import seed_url

    settings = get_settings()
    if settings.backend != "postgres":
        raise CourseError(
            "grading a workshop needs COURSE_DATABASE_URL (or COURSE_BACKEND=postgres) on its server"
        )
    seats = read_seats(seats_file)
    admin = admin_url(settings)
    if db.parse_url(seed_url(settings)).database != db.parse_url(template_url(admin, settings.scale)).database:
        raise CourseError(
            f"COURSE_DATABASE_URL must name the workshop's seed, {db.parse_url(template_url(admin, settings.scale)).database}"
        )
    refresh(admin, seats, scale=settings.scale)
    print(f"Made {len(seats)} learner database(s) again from the verified seed before grading.")
    return {seat.learner.removeprefix(PREFIX): seat.url for seat in seats}
