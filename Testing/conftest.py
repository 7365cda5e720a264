"""Shared fixtures: small synthetic cardiac-like slices with exact labels, for fast CPU tests."""

from __future__ import annotations

import pytest

from toy_slices import ring_slices


@pytest.fixture
def rings():
    return ring_slices(8, 32, seed=1)


@pytest.fixture(scope="session")
def bundle(tmp_path_factory):
    """A tiny trained model bundle (inference_helpers.trained_model), saved once for every test that reads one;
    tests that alter a bundle work on a copy."""
    from inference_helpers import save_trained_bundle

    return save_trained_bundle(tmp_path_factory.mktemp("bundle"))
