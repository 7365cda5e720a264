"""Where the shipped default model bundle lives, and the one place that says so.

The bundle itself is a folder made by ``CoopSegLib.bundle.save_bundle`` from the run that docs/model_card.md describes.
An install without it (a stripped package) gets a message from ``default_bundle()`` saying how to get a model.
"""

from __future__ import annotations

from pathlib import Path

from CoopSegLib.errors import CoopSegError

DEFAULT_BUNDLE = Path(__file__).resolve().parent / "default.coopseg"



def no_default_model(remedy: str) -> str:
    """The message for an install without the shipped model, ending in what the caller's user can do."""
    return f"no default model is shipped with this install ({DEFAULT_BUNDLE} is missing); {remedy}"


NO_DEFAULT_MODEL = no_default_model("pass --model BUNDLE (train one with python Training/train.py)")


def has_default_bundle() -> bool:
    """Whether this install ships a default model (callers with their own wording check this first)."""
    return (DEFAULT_BUNDLE / "metadata.json").is_file()


def default_bundle() -> Path:
    """The shipped bundle's folder; a CoopSegError saying what to do when this install has none."""
    if not has_default_bundle():
        raise CoopSegError(NO_DEFAULT_MODEL)
    return DEFAULT_BUNDLE
