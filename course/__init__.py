"""Backend database practice with async SQLAlchemy: the course's importable package."""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import sys
from types import ModuleType

__version__ = "0.1.0"

# Import paths of the release before the layout moved into sub-packages, which learners' own exercise copies still
# use (DESIGN.md: thin shims for one release). Each old name is the new module itself, not a copy of it.
MOVED = {
    "course.checks.ch01_crud": "course.chapters.ch01_crud.checks",
    "course.checks.ch02_indexing": "course.chapters.ch02_indexing.checks",
    "course.checks.ch04_pagination": "course.chapters.ch04_pagination.checks",
    "course.explain": "course.tools.explain",
    "course.models": "course.domain.models",
    "course.notebook": "course.tools.lesson",
    "course.schemas": "course.domain.schemas",
    "course.security": "course.domain.security",
}


class _MovedModules(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Answers an import of an old path with the module that now lives at the new one."""

    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        return importlib.util.spec_from_loader(fullname, self) if fullname in MOVED else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        return importlib.import_module(MOVED[spec.name])

    def exec_module(self, module: ModuleType) -> None:
        """Nothing to run: the new module was imported (and ran) under its own name."""


if not any(isinstance(finder, _MovedModules) for finder in sys.meta_path):
    sys.meta_path.append(_MovedModules())
