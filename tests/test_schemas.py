"""The pydantic input models validate what a client sends and report only what it set."""

import pytest
from pydantic import ValidationError

from course.domain.models import User
from course.domain.schemas import ProfileUpdate, UserCreate, UserUpdate


def test_partial_update_keeps_only_sent_fields() -> None:
    assert UserUpdate(name="New").model_dump(exclude_unset=True) == {"name": "New"}
    assert UserUpdate(name="New").model_dump()["email"] is None


@pytest.mark.parametrize(
    "payload",
    [
        {"email": "not-an-email"},
        {"role": "superuser"},
        {"name": ""},
        {"display_name": ""},
        {"display_name": "x" * 101},
        {"password_hash": "x"},
    ],
)
def test_bad_updates_are_refused(payload: dict) -> None:
    with pytest.raises(ValidationError):
        UserUpdate(**payload)


def test_create_requires_a_real_password() -> None:
    with pytest.raises(ValidationError):
        UserCreate(email="a@example.com", name="A", password="short")
    assert UserCreate(email="a@example.com", name="A", password="long enough").password == "long enough"


@pytest.mark.parametrize("field", ["email", "name", "role", "status"])
def test_update_refuses_null_for_not_null_columns(field: str) -> None:
    with pytest.raises(ValidationError, match="not set to null"):
        UserUpdate.model_validate({field: None})


def test_update_accepts_null_exactly_for_nullable_columns() -> None:
    # Null is refused where the column is NOT NULL and accepted (it clears the value) where the column allows it.
    for field in UserUpdate.model_fields:
        nullable = User.__table__.c[field].nullable
        try:
            UserUpdate.model_validate({field: None})
            accepted = True
        except ValidationError:
            accepted = False
        assert accepted == nullable, field
    assert {f for f in UserUpdate.model_fields if User.__table__.c[f].nullable} == {"display_name"}


def test_user_update_clears_display_name_with_null() -> None:
    clear = UserUpdate.model_validate({"display_name": None})
    assert clear.model_dump(exclude_unset=True) == {"display_name": None}
    assert clear.model_dump(exclude_none=True) == {}
    assert UserUpdate(display_name="Maya").model_dump(exclude_unset=True) == {"display_name": "Maya"}


def test_profile_update_clears_location_with_null() -> None:
    assert ProfileUpdate.model_validate({"location": None}).model_dump(exclude_unset=True) == {"location": None}
    assert ProfileUpdate.model_validate({"location": None}).model_dump(exclude_none=True) == {}
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"bio": None})
