"""The pydantic input models validate what a client sends and report only what it set."""

import pytest
from pydantic import ValidationError

from course.domain.schemas import UserCreate, UserUpdate


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
