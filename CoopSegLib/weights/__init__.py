"""Where the shipped default model bundle lives, and the one place that says so.

The bundle itself (a folder made by ``CoopSegLib.bundle.save_bundle``) is added by a later release; until then
``default_bundle()`` stops with a message saying how to get a model.
"""

from __future__ import annotations

from pathlib import Path

from CoopSegLib.errors import CoopSegError

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default.coopseg"

NO_DEFAULT_MODEL = (
    "no default model is shipped with this install yet; pass --model BUNDLE (train one with python Training/train.py)"
)


def has_default_bundle() -> bool:
    """Whether this install ships a default model (callers with their own wording check this first)."""
    return (DEFAULT_BUNDLE / "metadata.json").is_file()


def default_bundle() -> Path:
    """The shipped bundle's folder; a CoopSegError saying what to do when this install has none."""
    if not has_default_bundle():
        raise CoopSegError(NO_DEFAULT_MODEL)
    return DEFAULT_BUNDLE
