"""Validation split stratified by ACDC group, the split a continued run inherits, and the rule that a run never
validates on subjects its starting weights were trained on."""

from pathlib import Path

import pytest
import torch

from CoopSegLib.bundle import load_bundle
from CoopSegLib.data.readers import list_acdc_subjects, read_acdc_groups
from CoopSegLib.data.splits import all_subjects_split, stratified_split
from CoopSegLib.errors import ConfigError, CoopSegError
from CoopSegLib.networks import CoopSegModel
from CoopSegLib.training.loop import run_training
from CoopSegLib.training.run_data import make_split
from CoopSegLib.training.settings import TrainingSettings

from data_helpers import ACDC_ROOT as ACDC, needs_acdc
from inference_helpers import with_training_record
from toy_slices import SMALL_WIDTHS

REPO = Path(__file__).resolve().parents[1]
CONFIGS = REPO / "Training" / "configs"
GROUP_BY_DECADE = {0: "DCM", 1: "DCM", 2: "HCM", 3: "HCM", 4: "MINF", 5: "MINF", 6: "NOR", 7: "NOR", 8: "RV", 9: "RV"}


def acdc_settings(*overrides):
    return TrainingSettings.from_mapping({}, ["data.format=acdc", f"data.root={ACDC}", *overrides])


def expected_group(subject):  # ACDC numbers its subjects by group: 001-020 DCM, 021-040 HCM, ... (data README)
    return GROUP_BY_DECADE[(int(subject[-3:]) - 1) // 10]


@needs_acdc
def test_groups_come_from_info_cfg_and_each_group_gives_two_validation_subjects():
    groups = read_acdc_groups(ACDC)  # reads only the Info.cfg files
    assert len(groups) == 80 and all(groups[s] == expected_group(s) for s in groups)
    split = make_split(acdc_settings("data.split=stratified", "data.validation_per_group=2"),
                       list_acdc_subjects(ACDC))
    assert sorted(groups[s] for s in split.validation) == ["DCM"] * 2 + ["HCM"] * 2 + ["MINF"] * 2 + ["NOR"] * 2 \
        + ["RV"] * 2
    assert len(split.train) == 70 and not set(split.train) & set(split.validation)
    assert set(split.train) | set(split.validation) == set(groups)
    # The seed draws within each group; the same seed draws the same subjects.
    again = make_split(acdc_settings("data.split=stratified", "data.split_seed=0"), list_acdc_subjects(ACDC))
    other = make_split(acdc_settings("data.split=stratified", "data.split_seed=1"), list_acdc_subjects(ACDC))
    assert again == split and other.validation != split.validation
    assert sorted(groups[s] for s in other.validation) == sorted(groups[s] for s in split.validation)


def test_a_group_too_small_to_hold_out_is_named():
    groups = {"a1": "NOR", "a2": "NOR", "a3": "NOR", "b1": "HCM", "b2": "HCM"}
    assert len(stratified_split(groups, 1).validation) == 2
    with pytest.raises(CoopSegError, match=r"too few in HCM \(2\)"):
        stratified_split(groups, 2)


@pytest.mark.parametrize("override, message", [
    ("data.split=stratified", "data.split stratified needs ACDC's groups"),  # the phantom has no groups
    ("data.split=inherit", "data.split inherit keeps the split of train.init_from's bundle"),
    ("data.validation_per_group=0", "data.validation_per_group must be positive"),
])
def test_split_settings_are_checked(override, message):
    with pytest.raises(ConfigError, match=message):
        TrainingSettings.from_mapping({}, [override])


@needs_acdc
def test_a_bundle_trained_on_the_validation_subjects_is_refused_and_inherit_keeps_its_split(tmp_path, bundle):
    subjects = list_acdc_subjects(ACDC)
    stratified = make_split(acdc_settings("data.split=stratified"), subjects)
    # Weights trained on the usual random split (8 held out): they saw most of the stratified validation subjects.
    random = all_subjects_split(subjects, 8, seed=0)
    start = with_training_record(bundle, tmp_path / "start.coopseg", random.train, random.validation)
    seen = sorted(set(stratified.validation) & set(random.train))
    assert seen
    with pytest.raises(CoopSegError) as error:
        make_split(acdc_settings("data.split=stratified", f"train.init_from={start}"), subjects)
    message = str(error.value)
    assert "\n" not in message and str(start) in message and ", ".join(seen) in message
    assert not set(stratified.validation) - set(seen) & set(message.split(", "))  # names only the seen ones
    # inherit: exactly the subjects the bundle trained and validated on.
    inherited = make_split(acdc_settings("data.split=inherit", f"train.init_from={start}"), subjects)
    assert inherited == random
    # The same random split drawn again passes the check: it validates on what the weights never saw.
    assert make_split(acdc_settings("data.n_validation=8", "data.split_seed=0", f"train.init_from={start}"),
                      subjects) == random
    # A bundle whose split names subjects that are not in the data cannot be inherited.
    elsewhere = with_training_record(bundle, tmp_path / "elsewhere.coopseg", ["patient200", *random.train[1:]],
                                     random.validation)
    with pytest.raises(CoopSegError, match="patient200"):
        make_split(acdc_settings("data.split=inherit", f"train.init_from={elsewhere}"), subjects)


@needs_acdc
def test_the_shipped_model_as_the_start_keeps_its_own_split():
    from CoopSegLib.bundle import read_metadata, recorded_subjects
    from CoopSegLib.weights import default_bundle

    subjects = list_acdc_subjects(ACDC)
    inherited = make_split(acdc_settings("data.split=inherit", "train.init_from=shipped"), subjects)
    metadata = read_metadata(default_bundle())
    assert sorted(inherited.validation) == sorted(recorded_subjects(metadata, "validation"))
    assert sorted(inherited.train) == sorted(recorded_subjects(metadata, "train"))


TINY = ["data.phantom_subjects=4", "data.n_validation=1", "data.size=48", f"method.widths={list(SMALL_WIDTHS)}",
        "train.batch_size=2", "validation.every=0", "log.tensorboard=false", "checkpoint.every=100"]


@pytest.mark.slow
def test_a_resumed_run_refuses_a_split_that_validates_on_its_training_subjects(tmp_path):
    subjects = [f"phantom{i:04d}" for i in range(4)]
    first = all_subjects_split(subjects, 1, seed=0)
    seed = next(s for s in range(1, 50) if all_subjects_split(subjects, 1, seed=s).validation != first.validation)
    run_training(TrainingSettings.from_mapping({}, [*TINY, "train.steps=1"]), tmp_path / "run", say=lambda _: None)
    checkpoint = torch.load(tmp_path / "run" / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["split"] == {"train": list(first.train), "validation": list(first.validation)}
    moved = TrainingSettings.from_mapping({}, [*TINY, "train.steps=2", f"data.split_seed={seed}"])
    with pytest.raises(CoopSegError, match="last.pt was trained on validation subject"):
        run_training(moved, tmp_path / "run", resume=True, say=lambda _: None)
    resumed = run_training(TrainingSettings.from_mapping({}, [*TINY, "train.steps=2"]), tmp_path / "run",
                           resume=True, say=lambda _: None)
    assert resumed.step == 2


@pytest.mark.slow
@pytest.mark.parametrize("name, code", [("acdc_v6_fresh", 12), ("acdc_v6_code24", 24)])
def test_v6_configs_build_their_model_and_train_two_steps(tmp_path, name, code):
    settings = TrainingSettings.from_yaml(CONFIGS / f"{name}.yaml", ["data.root=/data"])
    network = settings.method.config().network
    model = CoopSegModel(network).eval()
    with torch.no_grad():
        z_i = model.ftn.encoder(torch.rand(1, 1, settings.data.size, settings.data.size))
    assert tuple(z_i.shape[-2:]) == (code, code)
    # The same recipe on the phantom (ACDC's groups are not needed to build it) at half the size, two steps of
    # 2 + 2 crops.
    phantom = TrainingSettings.from_yaml(CONFIGS / f"{name}.yaml", [
        "data.format=phantom", "data.split=all", "data.phantom_subjects=3", "data.n_validation=1", "data.size=96",
        "data.spacing_mm=2.73438", "data.crop=64", "train.steps=2",
        "train.batch_size=2", "train.warmup_steps=1", "validation.every=0", "log.tensorboard=false",
        "log.every=1", f"output_root={tmp_path}"])
    outcome = run_training(phantom, tmp_path / name, say=lambda _: None)
    assert outcome.step == 2 and load_bundle(outcome.bundle).model.config.widths == network.widths
