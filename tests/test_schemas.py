"""The pydantic input models validate what a client sends and report only what it set."""

import pytest
from pydantic import ValidationError

from course.domain.schemas import ProfileUpdate, UserCreate, UserUpdate


def test_partial_update_keeps_only_sent_fields() -> None:
    assert UserUpdate(name="New").model_dump(exclude_unset=True) == {"name": "New"}
    assert UserUpdate(name="New").model_dump()["email"] is None


@pytest.mark.parametrize(
    "payload",
    [{"email": "not-an-email"}, {"role": "superuser"}, {"name": ""}, {"password_hash": "x"}],
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


def test_profile_update_clears_location_with_null() -> None:
    assert ProfileUpdate.model_validate({"location": None}).model_dump(exclude_unset=True) == {"location": None}
    assert ProfileUpdate.model_validate({"location": None}).model_dump(exclude_none=True) == {}
    with pytest.raises(ValidationError):
        ProfileUpdate.model_validate({"bio": None})
