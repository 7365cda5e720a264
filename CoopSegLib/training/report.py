"""The short Markdown report a finished run leaves in its folder: what, on what, how long, how well, how to use it."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict

from CoopSegLib import vocabulary
from CoopSegLib.atomic import write_atomically
from CoopSegLib.networks import STAGES

if TYPE_CHECKING:
    from CoopSegLib.training.outcome import TrainingOutcome
    from CoopSegLib.training.run_data import RunData
    from CoopSegLib.training.settings import TrainingSettings



def dice_table(outcome: "TrainingOutcome") -> str:
    if outcome.best is None:
        return "No validation subjects: the bundle holds the last weights.\n"
    structures = list(outcome.best.dice["stn"])
    lines = ["| stage | " + " | ".join(s.upper() for s in structures) + " | mean |",
             "|---" * (len(structures) + 2) + "|"]
    for stage in STAGES:
        values = [outcome.best.dice[stage][s] for s in structures] + [outcome.best.mean(stage)]
        lines.append(f"| {vocabulary.stage(stage).title} | " + " | ".join(f"{v:.3f}" for v in values) + " |")
    return "\n".join(lines) + "\n"


def write_report(path: Path, settings: "TrainingSettings", data: "RunData", outcome: "TrainingOutcome",
                 record: Dict[str, Any]) -> Path:
    config = settings.method.config()
    paired = " + the same un-augmented" if settings.train.paired else ""
    source = f" {settings.data.root}" if settings.data.root else ""
    text = f"""# Training run {settings.name}

{settings.description}

- Method: `{settings.method.variant}` (hard examples {'on' if config.hard_examples else 'off'}, masking schemes
  {', '.join(config.masking_schemes)}, code sharing {config.network.code_sharing}, cooperative gradients
  {'on' if config.cooperative_gradients else 'off'}), widths {list(config.network.widths)}, Adam lr {config.learning_rate}
- Data: {settings.data.format}{source}; {len(data.split.train)} training subjects
  ({len(data.train)} slices at {settings.data.spacing_mm} mm, {settings.data.size} x {settings.data.size}),
  {len(data.split.validation)} validation subjects
- Steps: {outcome.step} of batch {settings.train.batch_size}{paired}
  per process, {record['processes']} process(es) on {record['device']}
  ({record['precision']}, {record['threads']} threads), seed {settings.train.seed}
- Wall time: {record['wall_time_s'] / 60:.1f} min; last measured throughput {outcome.samples_per_s:.1f} slices/s
- Weights in the bundle: step {record['weights_from_step']}

## Validation: 3D Dice (model grid), best FTN+STN step

{dice_table(outcome)}
Training subjects: {', '.join(data.split.train)}

Validation subjects: {', '.join(data.split.validation) or 'none'}

## Use

    coopseg segment INPUT.nii.gz --output-dir OUTPUT --model {outcome.bundle}

Logs: `losses.csv`, `validation.csv`, and `tensorboard --logdir {outcome.run_dir / 'tensorboard'}`.
"""
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text))
