"""Pydantic v2 input models the CRUD lesson and exercises share: what a client may send, validated."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, EmailStr, Field, field_validator


class UserCreate(BaseModel):
    """A sign-up: the plain password only ever lives here, never in the database."""

    model_config = ConfigDict(extra="forbid")

    email: EmailStr
    name: str = Field(min_length=1, max_length=100)
    password: str = Field(min_length=8)


class UserUpdate(BaseModel):
    """A partial update: every field may be left out; only the fields the client sent are changed.

    `display_name` is a nullable column: sending it as null clears it (the user is then shown by `name`). The other
    fields may be left out, but not sent as null: their columns are NOT NULL, so a null would only come back later
    as an IntegrityError (a 500 in an API) instead of a validation error now (a 422).
    """

    model_config = ConfigDict(extra="forbid")

    email: EmailStr | None = None
    name: str | None = Field(default=None, min_length=1, max_length=100)
    display_name: str | None = Field(default=None, min_length=1, max_length=100)
    role: Literal["member", "moderator", "admin"] | None = None
    status: Literal["active", "suspended"] | None = None

    # Validators run only on values the client sent: a left-out field keeps its default without passing here.
    @field_validator("email", "name", "role", "status")
    @classmethod
    def _not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not set to null (the column is NOT NULL)")
        return value


class ProfileUpdate(BaseModel):
    """A partial update of a profile: `location` is a nullable column, so null is how a client clears it."""

    model_config = ConfigDict(extra="forbid")

    bio: str | None = Field(default=None, max_length=2000)
    location: str | None = Field(default=None, max_length=100)

    @field_validator("bio")
    @classmethod
    def _bio_not_null(cls, value: object) -> object:
        if value is None:
            raise ValueError("may be left out, but not set to null (send an empty text to clear it)")
        return value
