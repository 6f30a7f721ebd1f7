"""What chapter 8's checks share: a migrations folder on the check's copy, learner steps run by Alembic, diffs in words."""

from __future__ import annotations

import sysconfig
import traceback
from collections.abc import Callable
from typing import Any

from alembic import op
from sqlalchemy import MetaData
from sqlalchemy.exc import DBAPIError

from course.chapters.ch08_migrations.workspace import Migrations
from course.checks.base import CheckDB, call_learner, fail


class LearnerSteps:
    """The learner's upgrade/downgrade as a revision's steps; an exception they raise is kept for the verdict."""

    def __init__(self, upgrade: Callable[[], Any], downgrade: Callable[[], Any]) -> None:
        self.functions = {"upgrade": upgrade, "downgrade": downgrade}
        self.error: BaseException | None = None

    def step(self, name: str) -> Callable[[], None]:
        def run() -> None:
            try:
                self.functions[name]()
            except BaseException as exc:
                self.error = exc
                raise

        return run

    async def raise_learner_error(self) -> None:
        """Turn what the learner's step raised into the usual verdict (not solved yet / your code raised ...)."""
        error, self.error = self.error, None
        if error is None:
            return
        if isinstance(error, NotImplementedError) and not str(error).startswith("Exercise"):
            # Alembic's own NotImplementedError (e.g. an ALTER SQLite cannot do), not the exercise's stub.
            fail(f"Alembic cannot run this here: {str(error).splitlines()[0]}")
        if isinstance(error, DBAPIError):
            # The database's own words say what was wrong; a traceback into Alembic would not.
            reason = str(error.orig).strip().splitlines()[0]
            hint = (
                ": a NOT NULL column added to a table that has rows needs a server_default for them"
                if "null" in reason.lower() and "not null" in str(error.statement or "").lower() + reason.lower()
                else ""
            )
            fail(f"the database refused your migration ({reason}){hint}")
        if isinstance(error, NotImplementedError):
            # The exercise's stub: the usual "not solved yet" verdict.
            def again() -> None:
                raise error

            await call_learner(again)
        fail(
            f"your migration raised {type(error).__name__}: {str(error).strip().splitlines()[0] if str(error).strip() else ''}{_where(error)}"
        )


def _where(error: BaseException) -> str:
    """The learner's own line in the traceback: not Alembic, SQLAlchemy, the standard library or the course."""
    library = (sysconfig.get_paths()["stdlib"], sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"])
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if not f.filename.startswith(library)
        and "/course/" not in f.filename.replace("\\", "/")
        and "course-migrations-" not in f.filename
    ]
    return f" (line {frames[-1].lineno}: `{(frames[-1].line or '').strip()}`)" if frames else ""


def base_revision(migrations: Migrations, before: MetaData) -> None:
    """Revision 0001 creates the previous schema, as the project's history would have."""

    def create() -> None:
        before.create_all(op.get_bind())

    def drop() -> None:
        before.drop_all(op.get_bind())

    migrations.add_revision("0001", down_revision=None, upgrade=create, downgrade=drop, message="previous schema")


async def run_steps(migrations: Migrations, steps: LearnerSteps, action: str, target: str) -> None:
    """upgrade/downgrade through the learner's revision; their exceptions become the verdict."""
    try:
        await getattr(migrations, action)(target)
    except Exception:
        if steps.error is None:
            raise
        await steps.raise_learner_error()


def learner_revision(
    migrations: Migrations, upgrade: Callable[[], Any], downgrade: Callable[[], Any]
) -> LearnerSteps:
    steps = LearnerSteps(upgrade, downgrade)
    migrations.add_revision(
        "0002", down_revision="0001", upgrade=steps.step("upgrade"), downgrade=steps.step("downgrade")
    )
    return steps


def new_migrations(db: CheckDB, models: MetaData) -> Migrations:
    return Migrations(db.url, models)


def describe(diffs: list[Any], target: str = "the models") -> str:
    """Autogenerate's differences in words, the first three."""
    words = [_one(d).replace("the models", target) for d in diffs]
    more = f" (and {len(words) - 3} more)" if len(words) > 3 else ""
    return "; ".join(words[:3]) + more


def _one(diff: Any) -> str:
    if isinstance(diff, list):
        kind, _schema, table, column, existing, old, new = diff[0]
        what = {"modify_nullable": "NULL-ability", "modify_default": "server default", "modify_type": "type"}
        return (
            f"{table}.{column}: the {what.get(kind, kind)} differs ({_shown(old)} in the database, "
            f"{_shown(new)} in the models)"
        )
    kind, obj = diff[0], diff[-1]
    if kind in ("add_column", "remove_column"):
        table, column = diff[2], diff[3]
        return f"column {table}.{column.name} is {'missing' if kind == 'add_column' else 'there but not in the models'}"
    if kind in ("add_index", "remove_index", "add_constraint", "remove_constraint"):
        return f"{kind.split('_')[1]} {obj.name} is {'missing' if kind.startswith('add') else 'there but not in the models'}"
    if kind in ("add_table", "remove_table"):
        return f"table {obj.name} is {'missing' if kind == 'add_table' else 'there but not in the models'}"
    return str(kind)


def _shown(value: Any) -> str:
    """A type, flag or server default as a learner would write it (a DefaultClause shows its SQL, not its repr)."""
    arg = getattr(value, "arg", value)
    if hasattr(arg, "compile"):
        try:
            arg = arg.compile(compile_kwargs={"literal_binds": True})
        except Exception:  # noqa: BLE001 - a description only: fall back to str()
            pass
    return f"{str(arg):.40}"


def expect_no_diff(diffs: list[Any], when: str, target: str = "the models") -> None:
    if diffs:
        fail(f"{when}: {describe(diffs, target)}")
