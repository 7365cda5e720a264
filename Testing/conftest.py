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


# --- markers: `python -m pytest Testing -m "not slow"` runs the fast part (README: "Running the tests") ----------
# Modules whose tests train, launch worker or training processes, or segment real volumes many times over; the
# list comes from `python -m pytest Testing --durations=0` on a 2-core machine.
SLOW_MODULES = {
    "test_training_run", "test_distributed", "test_training_recipe", "test_learning", "test_gpu_table1",
    "test_slicer_worker", "test_slicer_worker_tree", "test_slicer_import", "test_second_look", "test_cli_segment",
    "test_cli_evaluate", "test_quality", "test_inference_engine", "test_slicer_exchange", "test_compare_checkpoints",
    "test_second_look_scoring",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: trains, launches processes or segments many volumes (minutes)")
    config.addinivalue_line("markers", "acdc: reads the real ACDC subjects in ../shared/data (skipped without them)")
    config.addinivalue_line("markers", "slicer: runs the Slicer module's logic on slicer-core")


def pytest_collection_modifyitems(config, items):
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1]
        if module in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
        if module.startswith("test_slicer_"):
            item.add_marker(pytest.mark.slicer)
        if any("ACDC" in str(mark.kwargs.get("reason", "")) for mark in item.iter_markers("skipif")):
            item.add_marker(pytest.mark.acdc)
