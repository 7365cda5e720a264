"""The short examples in the core classes' docstrings run and print what they say (TorchIO-style documentation)."""

import doctest

import pytest

from CoopSegLib import bundle, quality_file, runtime, vocabulary
from CoopSegLib.cooperative import config as cooperative_config
from CoopSegLib.cooperative import losses, objective, trainer
from CoopSegLib.inference import engine, quality, slice_predictor
from CoopSegLib.data import images
from CoopSegLib.networks import config as network_config
from CoopSegLib.networks import ftn, model, stn

MODULES = [network_config, model, ftn, stn, cooperative_config, losses, objective, trainer, engine, slice_predictor,
           bundle, runtime, images, vocabulary, quality_file, quality]


@pytest.mark.parametrize("module", MODULES, ids=lambda module: module.__name__)
def test_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE | doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0
