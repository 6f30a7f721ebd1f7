"""Judging a session-per-request dependency: mount it in a small app, send requests that succeed and fail, look."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Callable
from typing import Any

import httpx
from fastapi import Depends, FastAPI, HTTPException
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from course.chapters.ch06_pooling.watch import SessionLedger, tracked_sessionmaker
from course.checks.base import CheckDB, LearnerCodeError, expect, fail
from course.domain.models import Tag


class CrashAfterWrite(RuntimeError):
    """What the check's endpoint raises after a partial write: a bug in the endpoint, not in the dependency."""


def _app(get_session: Callable[..., Any], db: CheckDB) -> tuple[FastAPI, SessionLedger]:
    app = FastAPI()
    app.state.Session, ledger = tracked_sessionmaker(db.engine)
    # Mounted as the lesson teaches: the commit runs before the response is sent.
    session_dep = Depends(get_session, scope="function")

    @app.post("/tags/{name}", status_code=201)
    async def create(name: str, session: AsyncSession = session_dep) -> dict[str, int]:
        tag = Tag(name=name)
        session.add(tag)
        await session.flush()
        return {"id": tag.id}

    @app.post("/tags/{name}/conflict")
    async def conflict(name: str, session: AsyncSession = session_dep) -> None:
        session.add(Tag(name=name))
        await session.flush()
        raise HTTPException(status_code=409, detail="taken")

    @app.post("/tags/{name}/crash")
    async def crash(name: str, session: AsyncSession = session_dep) -> None:
        session.add(Tag(name=name))
        await session.flush()
        raise CrashAfterWrite("the endpoint failed after a partial write")

    @app.get("/forbidden")
    async def forbidden(session: AsyncSession = session_dep) -> None:
        raise HTTPException(status_code=403, detail="no")

    return app, ledger


async def _send(client: httpx.AsyncClient, path: str, *, method: str = "POST") -> httpx.Response | BaseException:
    """The response, or what the app raised (the client re-raises an app's unhandled exception)."""
    try:
        return await client.request(method, path)
    except NotImplementedError as exc:
        fail(f"not solved yet ({exc}): replace the `raise NotImplementedError` line with your code")
    except Exception as exc:  # noqa: BLE001 - whatever the app raised is judged below
        return exc


async def _tag_exists(db: CheckDB, name: str) -> bool:
    async with db.Session() as session:
        return (await session.scalar(select(Tag.id).where(Tag.name == name))) is not None


def _after(db: CheckDB, ledger: SessionLedger, what: str) -> None:
    out = db.engine.pool.checkedout()  # type: ignore[attr-defined]
    expect(
        ledger.unclosed == 0,
        f"after {what}, {ledger.unclosed} session(s) were never closed: close the session when the request ends, "
        "whatever happened in it",
    )
    expect(out == 0, f"after {what}, {out} connection(s) were still checked out of the pool: that is a leak")


async def judge_dependency(get_session: Callable[..., Any], db: CheckDB) -> None:
    app, ledger = _app(get_session, db)
    try:
        await _judge(app, ledger, db)
    finally:
        await ledger.close_all()


async def _judge(app: FastAPI, ledger: SessionLedger, db: CheckDB) -> None:
    stem = f"Ch06-{secrets.token_hex(3)}"
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://check") as client:
        got = await _send(client, f"/tags/{stem}-ok")
        if isinstance(got, BaseException):
            raise LearnerCodeError(got) from got
        expect(
            not (got.status_code == 422 and '"request"' in got.text),
            "FastAPI took `request` for a query parameter and answered 422: keep the annotation `request: Request`",
        )
        expect(
            got.status_code == 201, f"a request that should succeed answered {got.status_code}: {got.text[:120]}"
        )
        expect(
            await _tag_exists(db, f"{stem}-ok"),
            "a request that succeeded wrote a tag, but it is not in the database: commit when the endpoint returns",
        )
        _after(db, ledger, "a request that succeeded")

        got = await _send(client, "/forbidden", method="GET")
        status = got.status_code if isinstance(got, httpx.Response) else type(got).__name__
        expect(
            status == 403,
            f"an endpoint that raised HTTPException(403) answered {status}: let the exception through "
            "(re-raise it after rolling back) so FastAPI can answer it",
        )
        _after(db, ledger, "a request that raised HTTPException before any query")

        got = await _send(client, f"/tags/{stem}-conflict/conflict")
        status = got.status_code if isinstance(got, httpx.Response) else type(got).__name__
        expect(
            not await _tag_exists(db, f"{stem}-conflict"),
            "an endpoint wrote a tag and then raised HTTPException(409), and the tag was committed: "
            "a request that raises must be rolled back",
        )
        expect(
            status == 409,
            f"an endpoint that raised HTTPException(409) answered {status}: re-raise after rolling back",
        )
        _after(db, ledger, "a request that raised HTTPException after a write")

        got = await _send(client, f"/tags/{stem}-crash/crash")
        expect(
            not await _tag_exists(db, f"{stem}-crash"),
            "an endpoint wrote a tag and then crashed, and the tag was committed: roll back when the endpoint raises",
        )
        expect(
            isinstance(got, CrashAfterWrite),
            "the endpoint's own error did not come out of the app "
            f"({type(got).__name__ if isinstance(got, BaseException) else got.status_code}): re-raise it after "
            "rolling back, never swallow it",
        )
        _after(db, ledger, "a request that crashed after a write")

        before = len(ledger.made)
        names = [f"{stem}-many-{n}" for n in range(20)]
        results = await asyncio.gather(*(_send(client, f"/tags/{name}") for name in names))
        sessions = len(ledger.made) - before
        expect(
            sessions >= len(names),
            f"{len(names)} concurrent requests were served by {sessions} session(s): each request needs its own "
            "session, made from request.app.state.Session",
        )
        bad = [r for r in results if not isinstance(r, httpx.Response) or r.status_code != 201]
        expect(not bad, f"{len(bad)} of {len(names)} concurrent requests failed")
        kept = [name for name in names if await _tag_exists(db, name)]
        expect(
            len(kept) == len(names), f"only {len(kept)} of {len(names)} concurrent requests' writes were committed"
        )
        _after(db, ledger, f"{len(names)} concurrent requests")
