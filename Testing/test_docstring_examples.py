"""The short examples in the core classes' docstrings run and print what they say (TorchIO-style documentation)."""

import doctest

import pytest

from CoopSegLib import bundle, runtime
from CoopSegLib.cooperative import config as cooperative_config
from CoopSegLib.cooperative import objective, trainer
from CoopSegLib.inference import engine, slice_predictor
from CoopSegLib.networks import config as network_config
from CoopSegLib.networks import model

MODULES = [network_config, model, cooperative_config, objective, trainer, engine, slice_predictor, bundle, runtime]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0
