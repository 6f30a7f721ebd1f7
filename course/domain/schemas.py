"""Pydantic v2 input models the CRUD lesson and exercises share: what a client may send, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field


class UserCreate(BaseModel):
    """A sign-up: the plain password only ever lives here, never in the database."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8)


class UserUpdate(BaseModel):
    """A partial update: every field optional; only the fields the client sent are changed."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Literal["member", "moderator", "admin"] | None = None
    status: Literal["active", "suspended"] | None = None
