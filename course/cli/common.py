"""What the command modules share: settings from the command line."""

from __future__ import annotations

import argparse

from course.settings import Settings, get_settings


def settings_from(args: argparse.Namespace) -> Settings:
    """Settings with --scale, --url and --backend applied over the environment."""
    overrides = {}
    if getattr(args, "scale", None):
        overrides["scale"] = args.scale
    if getattr(args, "url", None):
        overrides["database_url"] = args.url
    if getattr(args, "backend", None):
        overrides["backend"] = args.backend
    return get_settings(**overrides)
