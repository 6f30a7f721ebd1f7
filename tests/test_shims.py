"""The import paths of the previous release's exercise notebooks still work (DESIGN: thin shims for one release,
course/__init__.py's MOVED).

Learners keep their own copies of exercise notebooks; the lines below are the imports those copies hold, taken from
the exercises/ of the release before the layout moved into sub-packages.
"""

from __future__ import annotations

import importlib

import pytest

OLD_IMPORTS = {
    "course.checks.ch01_crud": ("check", "course.chapters.ch01_crud.checks"),
    "course.checks.ch02_indexing": ("check", "course.chapters.ch02_indexing.checks"),
    "course.checks.ch04_pagination": ("check", "course.chapters.ch04_pagination.checks"),
    "course.explain": ("explain", "course.tools.explain"),
    "course.models": ("User", "course.domain.models"),
    "course.notebook": ("setup", "course.tools.lesson"),
    "course.schemas": ("UserUpdate", "course.domain.schemas"),
    "course.security": ("hash_password", "course.domain.security"),
}


@pytest.mark.parametrize("old", sorted(OLD_IMPORTS))
def test_old_import_path_gives_the_same_object(old: str) -> None:
    name, new = OLD_IMPORTS[old]
    assert getattr(importlib.import_module(old), name) is getattr(importlib.import_module(new), name)


def test_old_models_module_has_every_model() -> None:
    old, new = importlib.import_module("course.models"), importlib.import_module("course.domain.models")
    for name in ("User", "Profile", "Post", "Comment", "Order", "Account", "Base"):
        assert getattr(old, name) is getattr(new, name)
