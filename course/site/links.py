"""Launch links for a chapter's notebook: Binder (mybinder.org) and a classroom JupyterHub (nbgitpuller)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote, urlencode, urlsplit

from course.chapters.registry import Chapter
from course.errors import CourseError

# The course's public repository; a fork or a classroom copy sets COURSE_REPO_URL or passes --repo.
DEFAULT_REPO = "https://github.com/async-sqlalchemy-course/course"
DEFAULT_BRANCH = "main"
Kind = Literal["lesson", "exercises"]
FOLDERS: dict[str, str] = {"lesson": "notebooks", "exercises": "exercises"}


@dataclass(frozen=True)
class Launch:
    """Where the notebooks can be launched from: the repository (and branch) Binder builds and a hub clones."""

    repo: str = DEFAULT_REPO
    branch: str = DEFAULT_BRANCH
    # A classroom JupyterHub's address; None when the course has none.
    hub: str | None = None

    @classmethod
    def from_options(cls, *, repo: str | None = None, branch: str | None = None, hub: str | None = None) -> Launch:
        """Options over the environment (COURSE_REPO_URL, COURSE_REPO_BRANCH, COURSE_HUB_URL) over the defaults."""
        env = os.environ
        return cls(
            repo=_repo(repo or env.get("COURSE_REPO_URL") or DEFAULT_REPO),
            branch=_branch(branch or env.get("COURSE_REPO_BRANCH") or DEFAULT_BRANCH),
            hub=_hub(hub or env.get("COURSE_HUB_URL") or None),
        )

    @property
    def clone_folder(self) -> str:
        """The folder nbgitpuller clones into, in the learner's home: the repository's name."""
        return urlsplit(self.repo).path.rstrip("/").rsplit("/", 1)[-1].removesuffix(".git")

    def binder(self, chapter: Chapter, kind: Kind = "lesson") -> str:
        """A mybinder.org link that builds the repository and opens the chapter's notebook in JupyterLab."""
        parts = urlsplit(self.repo)
        if parts.netloc != "github.com":
            raise CourseError(
                f"Binder links need a GitHub repository (https://github.com/OWNER/NAME), got {self.repo}"
            )
        owner_name = parts.path.strip("/").removesuffix(".git")
        urlpath = f"lab/tree/{FOLDERS[kind]}/{chapter.notebook}"
        return f"https://mybinder.org/v2/gh/{owner_name}/{quote(self.branch, safe='')}?" + urlencode(
            {"urlpath": urlpath}, quote_via=quote, safe=""
        )

    def hub_link(self, chapter: Chapter, kind: Kind = "lesson") -> str:
        """An nbgitpuller link: the hub clones (or updates) the repository, then opens the chapter's notebook."""
        if self.hub is None:
            raise CourseError("no JupyterHub address: pass --hub https://hub.example.edu (or set COURSE_HUB_URL)")
        urlpath = f"lab/tree/{self.clone_folder}/{FOLDERS[kind]}/{chapter.notebook}"
        query = urlencode({"repo": self.repo, "urlpath": urlpath, "branch": self.branch}, quote_via=quote, safe="")
        return f"{self.hub}/hub/user-redirect/git-pull?{query}"


def _repo(url: str) -> str:
    parts = urlsplit(url.strip())
    name = parts.path.strip("/").removesuffix(".git")
    if parts.scheme != "https" or not parts.netloc or not name:
        raise CourseError(
            f"the repository must be an https URL such as https://github.com/OWNER/NAME, got {url!r}"
        )
    return f"https://{parts.netloc}/{name}"


def _branch(branch: str) -> str:
    if not branch.strip() or any(c.isspace() for c in branch):
        raise CourseError(f"not a branch name: {branch!r}")
    return branch


def _hub(url: str | None) -> str | None:
    """The hub's base address: `https://hub.example.edu/hub/home` and `https://hub.example.edu/` both give the host."""
    if url is None:
        return None
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CourseError(f"the hub address must be an http(s) URL such as https://hub.example.edu, got {url!r}")
    # A hub may live under a prefix (https://example.edu/jupyter/hub/...): keep what comes before /hub.
    path = parts.path.rstrip("/")
    prefix = path.split("/hub", 1)[0] if path.endswith("/hub") or "/hub/" in path else path
    return f"{parts.scheme}://{parts.netloc}{prefix}"
