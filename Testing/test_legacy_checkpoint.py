"""A run checkpointed by an earlier CoopSeg still loads and resumes: training runs in progress survive an update.

``fixtures/legacy_run`` (config.yaml and checkpoints/last.pt, networks of widths (2, 2) on 16-pixel phantom
slices, with a weight average) was written by the code of commit d17434d, before the model refactor of issue 17:

    settings = TrainingSettings.from_mapping({}, [
        "data.phantom_subjects=3", "data.n_validation=1", "data.size=16", "method.widths=[2, 2]",
        "method.learning_rate=0.0002", "train.batch_size=2", "train.steps=2", "train.ema_decay=0.9",
        "log.every=1", "log.tensorboard=false", "validation.every=0", "checkpoint.every=1"])
    run_training(settings, Path("run"), say=lambda _: None)   # then keep run/config.yaml, run/checkpoints/last.pt
"""

import shutil
from pathlib import Path

import torch

from CoopSegLib.bundle import load_bundle
from CoopSegLib.cooperative import CooperativeTrainer
from CoopSegLib.training.checkpoint import load_checkpoint
from CoopSegLib.training.loop import LAST_CHECKPOINT, load_run_settings, run_training

LEGACY_RUN = Path(__file__).parent / "fixtures" / "legacy_run"


def test_a_legacy_checkpoint_loads_every_weight_and_moment():
    settings = load_run_settings(LEGACY_RUN, [])
    state = load_checkpoint(LEGACY_RUN / LAST_CHECKPOINT)["trainer"]
    trainer = CooperativeTrainer(settings.method.config(), "cpu", "fp32", ema_decay=settings.train.ema_decay)
    trainer.load_state_dict(state)
    assert trainer.step == 2
    for saved, loaded in ((state["model"], trainer.model.state_dict()),
                          (state["average"], trainer.average.state_dict())):
        assert list(saved) == list(loaded)
        assert all(torch.equal(saved[key], loaded[key]) for key in saved)
    moments = trainer.optimizer.state_dict()["state"]
    assert all(torch.equal(moments[i]["exp_avg"], state["optimizer"]["state"][i]["exp_avg"]) for i in moments)


def test_a_legacy_run_resumes_to_a_loadable_bundle(tmp_path):
    run_dir = tmp_path / "run"
    shutil.copytree(LEGACY_RUN, run_dir)
    outcome = run_training(load_run_settings(run_dir, ["train.steps=3"]), run_dir, resume=True, say=lambda _: None)
    assert outcome.step == 3 and outcome.interrupted is None
    legacy = load_checkpoint(LEGACY_RUN / LAST_CHECKPOINT)["trainer"]["model"]
    resumed = load_checkpoint(run_dir / LAST_CHECKPOINT)["trainer"]["model"]
    assert list(resumed) == list(legacy)
    assert not torch.equal(resumed["ftn.encoder.input_block.0.0.weight"], legacy["ftn.encoder.input_block.0.0.weight"])
    bundle = load_bundle(outcome.bundle)
    assert bundle.metadata["training"]["steps"] == 3
