import json
from pathlib import Path

import pytest
import torch

from CoopSegLib.bundle import (BundleError, file_sha256, load_bundle, network_config, read_metadata,
                               recorded_objective, recorded_subjects, save_bundle)
from CoopSegLib.networks import CoopSegModel, NetworkConfig

from toy_slices import SMALL_WIDTHS

PREPROCESSING = {"spacing_mm": 1.36719, "size": 32}
LEGACY_BUNDLE = Path(__file__).parent / "fixtures" / "legacy_bundle.coopseg"


@pytest.fixture
def model():
    torch.manual_seed(0)
    return CoopSegModel(NetworkConfig(widths=SMALL_WIDTHS)).eval()


def test_round_trip_gives_the_same_predictions_and_metadata(tmp_path, model, rings):
    images, _ = rings
    path = save_bundle(tmp_path / "model.coopseg", model, PREPROCESSING, training={"steps": 3})
    assert sorted(p.name for p in path.iterdir()) == ["metadata.json", "weights.pt"]
    assert [p.name for p in tmp_path.iterdir()] == ["model.coopseg"]  # no staging folder left behind
    bundle = load_bundle(path)
    assert bundle.model.config == model.config and not bundle.model.training
    assert torch.equal(bundle.model.predict(images).refined, model.predict(images).refined)
    assert bundle.metadata["preprocessing"] == PREPROCESSING and bundle.metadata["training"] == {"steps": 3}
    assert bundle.metadata["labels"]["3"] == "RV cavity"


def test_the_network_is_stored_apart_from_the_training_settings(tmp_path, model):
    objective = {"learning_rate": 2e-4, "hard_examples": True}
    path = save_bundle(tmp_path / "model", model, PREPROCESSING, training={"steps": 3, "objective": objective})
    metadata = read_metadata(path)
    assert metadata["format_version"] == 2 and "architecture" not in metadata
    assert metadata["network"] == model.config.to_dict() and network_config(metadata) == model.config
    assert recorded_objective(metadata) == objective


def test_a_format_1_bundle_loads_its_weights_unchanged():
    """``fixtures/legacy_bundle.coopseg`` was written by the code of commit d17434d, before the model refactor of
    issue 17, in the format the shipped models v1 and v2 had (format 1, the whole CooperativeConfig as
    "architecture"):

        torch.manual_seed(0)
        model = CooperativeModel(CooperativeConfig(widths=(2, 2), learning_rate=2e-4)).eval()
        save_bundle("legacy_bundle.coopseg", model, {"spacing_mm": 1.36719, "size": 16}, training={"steps": 0},
                    storage="float16")
    """
    metadata = read_metadata(LEGACY_BUNDLE)
    assert metadata["format_version"] == 1 and "network" not in metadata
    loaded = load_bundle(LEGACY_BUNDLE).model.state_dict()
    stored = torch.load(LEGACY_BUNDLE / metadata["weights"]["file"], weights_only=True)
    assert list(loaded) == list(stored)
    assert all(torch.equal(loaded[key], stored[key].to(loaded[key].dtype)) for key in stored)
    # The network settings come from its "architecture"; the training settings stay readable beside them.
    assert network_config(metadata) == NetworkConfig(widths=(2, 2), temperature=2.0)
    assert recorded_objective(metadata)["learning_rate"] == metadata["architecture"]["learning_rate"] == 2e-4
    assert "widths" not in recorded_objective(metadata)


def test_float16_storage_is_smaller_and_close(tmp_path, model, rings):
    images, _ = rings
    full = save_bundle(tmp_path / "full", model, PREPROCESSING)
    half = save_bundle(tmp_path / "half", model, PREPROCESSING, storage="float16")
    assert (half / "weights.pt").stat().st_size < 0.6 * (full / "weights.pt").stat().st_size
    loaded = load_bundle(half).model
    assert next(loaded.parameters()).dtype == torch.float32
    reference = model.predict(images).initial.softmax(1)
    assert (loaded.predict(images).initial.softmax(1) - reference).abs().max() < 0.05


def test_altered_weights_are_refused(tmp_path, model):
    path = save_bundle(tmp_path / "model", model, PREPROCESSING)
    with open(path / "weights.pt", "r+b") as stream:
        stream.seek(-10, 2)
        stream.write(b"0123456789")
    with pytest.raises(BundleError, match="checksum"):
        load_bundle(path)


def test_architecture_mismatch_is_refused_not_replaced_by_random_weights(tmp_path, model):
    path = save_bundle(tmp_path / "model", model, PREPROCESSING)
    metadata = json.loads((path / "metadata.json").read_text())
    metadata["network"]["widths"] = [8, 16, 16, 32]
    (path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="do not match the architecture"):
        load_bundle(path)


def test_pickled_code_is_not_executed(tmp_path, model):
    path = save_bundle(tmp_path / "model", model, PREPROCESSING)

    class Payload:
        def __reduce__(self):
            return (exec, ("open(%r, 'w').write('ran')" % str(tmp_path / "pwned"),))

    torch.save({"evil": Payload()}, path / "weights.pt")
    metadata = json.loads((path / "metadata.json").read_text())
    metadata["weights"]["sha256"] = file_sha256(path / "weights.pt")  # even with a matching checksum
    (path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="plain weights"):
        load_bundle(path)
    assert not (tmp_path / "pwned").exists()


def test_not_a_bundle_and_existing_target(tmp_path, model):
    with pytest.raises(BundleError, match="no such model bundle"):
        load_bundle(tmp_path / "missing")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BundleError, match="no metadata.json"):
        read_metadata(tmp_path / "empty")
    path = save_bundle(tmp_path / "model", model, PREPROCESSING)
    with pytest.raises(BundleError, match="already exists"):
        save_bundle(path, model, PREPROCESSING)
    save_bundle(path, model, {"spacing_mm": 1.0, "size": 32}, overwrite=True)
    assert read_metadata(path)["preprocessing"]["spacing_mm"] == 1.0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty", "model"]


def test_recorded_subjects_reads_the_training_record(tmp_path, model):
    record = {"data": {"train_subjects": ["patient002", "patient003"], "validation_subjects": ["patient007"]}}
    metadata = read_metadata(save_bundle(tmp_path / "m.coopseg", model, PREPROCESSING, record))
    assert recorded_subjects(metadata, "train") == ["patient002", "patient003"]
    assert recorded_subjects(metadata) == ["patient007"]
    assert recorded_subjects({"training": None}) == []  # a bundle saved without a training record
