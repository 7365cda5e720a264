"""Issue 14, item 6: the training recipe's levers compared at equal wall-clock on the full-data split.

    python Training/compare_levers.py --data ../shared/data/ACDC/training --runs ../runs/levers \
        --start ../runs/v1_default.coopseg --output docs/lever_comparison.md

Every arm continues the same starting bundle (v1: trained by today's recipe alone, so no arm starts with a lever's
head start) for the same planned wall-clock, then `coopseg evaluate --subjects validation --no-second-look`
scores one pass of it on clean volumes and the artefact sets. The arms are today's recipe (acdc_full at the rate v1 finished with), the new recipe
(acdc_v4) with two training seeds (their difference is the seed spread), and the new recipe with one lever switched
off at a time: heart crops, strong intensity augmentation, targeted-mask ranking (|g| against expected loss) and the
weight average. The warm-up and cosine schedule is part of every new-recipe arm.

Equal wall-clock is planned, not timed: each arm's steps are its budget divided by its seconds per step, measured
with both cores idle (bench/train_step.py plus the data and logging time of a real run, ``SECONDS_PER_STEP``), so a
busy machine slows an arm without changing what it trains. Each finished arm is skipped when the script runs again;
a stopped one is resumed.
"""

from __future__ import annotations

import argparse
import csv
import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

ROOT = Path(__file__).resolve().parents[1]
SETS = ("clean", "bias", "ghosting", "motion", "spike", "spike_paper")
SET_COLUMNS = ("clean", "RandBias", "RandGhosting", "RandMotion", "RandSpike", "RandSpike 0-1")  # SETS' headings
# Seconds per step with 2 idle cores (AMD EPYC, bf16): bench/train_step.py's cooperative step (16 slices at 160 px
# 1.56 s, 16 at 192 px 2.06 s, 8 at 192 px 1.07 s) plus 0.2 s of data and logging, which acdc_v4's run shows
# (1.76 s a step at 160 px).
SECONDS_PER_STEP = {"crop160_batch8": 1.76, "full192_batch8": 2.26, "full192_batch4": 1.27}


@dataclass(frozen=True)
class Arm:
    name: str
    what: str
    config: str
    speed: str  # a key of SECONDS_PER_STEP
    overrides: Tuple[str, ...] = ()
    seed: int = 0

    def steps(self, minutes: float) -> int:
        return int(minutes * 60 / SECONDS_PER_STEP[self.speed])


ARMS = (
    Arm("today", "today's recipe (acdc_full: 4 + 4 whole slices, paper augmentation, constant Adam 2e-5, "
        "|g| ranking, no average)", "acdc_full", "full192_batch4", ("method.learning_rate=2e-5",)),
    Arm("new", "new recipe (acdc_v4: 8 + 8 160 px heart crops, strong augmentation, warm-up + cosine from 2e-4, "
        "|g| ranking, average 0.999)", "acdc_v4", "crop160_batch8"),
    Arm("new_seed1", "new recipe, training seed 1", "acdc_v4", "crop160_batch8", seed=1),
    Arm("no_crop", "new recipe without crops (whole 192 px slices)", "acdc_v4", "full192_batch8", ("data.crop=null",)),
    Arm("paper_augmentation", "new recipe with the paper's augmentation only", "acdc_v4", "crop160_batch8",
        ("data.augmentation=paper",)),
    Arm("expected_loss_ranking", "new recipe, targeted masks ranked by expected loss increase", "acdc_v4",
        "crop160_batch8", ("method.mask_ranking=expected_loss",)),
    Arm("no_average", "new recipe without the weight average", "acdc_v4", "crop160_batch8", ("train.ema_decay=null",)),
)


def train_command(arm: Arm, run_dir: Path, data: str, start: str, minutes: float) -> List[str]:
    command = [sys.executable, str(ROOT / "Training" / "train.py"), "--no-calibrate"]
    if (run_dir / "checkpoints").is_dir():  # stopped earlier: resume where it stopped
        return command + ["--resume", str(run_dir)]
    command += ["--config", arm.config, "--data", data, "--run-dir", str(run_dir), "--seed", str(arm.seed)]
    settings = (f"train.init_from={start}", f"train.steps={arm.steps(minutes)}", "validation.every=0",
                "validation.images=false", "log.tensorboard=false", "checkpoint.every=100") + arm.overrides
    for setting in settings:
        command += ["--set", setting]
    return command


def evaluate_command(bundle: Path, data: str, output: Path) -> List[str]:
    return [sys.executable, "-m", "CoopSegLib", "evaluate", "--model", str(bundle), "--data", data,
            "--subjects", "validation", "--sets", ",".join(SETS), "--no-second-look", "--output-dir", str(output)]


def mean_dice(evaluation_csv: Path) -> Dict[Tuple[str, str], float]:
    """(set, stage) -> Dice averaged over cases and structures, as evaluation.md's first table."""
    sums: Dict[Tuple[str, str], List[float]] = {}
    with evaluation_csv.open() as handle:
        for row in csv.DictReader(handle):
            sums.setdefault((row["set"], row["stage"]), []).append(float(row["dice"]))
    return {key: sum(values) / len(values) for key, values in sums.items()}


def comparison_table(results: Sequence[Tuple[Arm, int, float, Dict[Tuple[str, str], float]]]) -> str:
    header = "| arm | steps | wall min | stage | " + " | ".join(SET_COLUMNS) + " |"
    lines = [header, "|" + "---|" * (4 + len(SET_COLUMNS))]
    for arm, steps, wall_min, dice in results:
        for stage in ("FTN", "FTN+STN"):
            cells = [f"{dice[(name, stage)]:.3f}" if (name, stage) in dice else "-" for name in SETS]
            lines.append(f"| {arm.name} | {steps} | {wall_min:.1f} | {stage} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, help="ACDC training folder")
    parser.add_argument("--runs", required=True, help="folder for the arms' runs and evaluations")
    parser.add_argument("--start", required=True, help="model bundle every arm continues")
    parser.add_argument("--minutes", type=float, default=11.0, help="planned wall-clock per arm (11)")
    parser.add_argument("--arms", default=",".join(arm.name for arm in ARMS), help="comma-separated arm names")
    parser.add_argument("--output", help="Markdown table to write (else printed)")
    args = parser.parse_args(argv)
    names = args.arms.split(",")
    unknown = sorted(set(names) - {arm.name for arm in ARMS})
    if unknown:
        parser.error(f"unknown arms {unknown}; choose from {[arm.name for arm in ARMS]}")
    runs = Path(args.runs)
    runs.mkdir(parents=True, exist_ok=True)
    results = []
    for arm in (arm for arm in ARMS if arm.name in names):
        run_dir, evaluation = runs / arm.name, runs / f"{arm.name}_eval"
        bundle = run_dir / "model.coopseg"
        if not bundle.is_dir():
            print(f"[{arm.name}] training {arm.steps(args.minutes)} steps: {arm.what}", flush=True)
            with (runs / f"{arm.name}.log").open("a") as log:
                if subprocess.call(train_command(arm, run_dir, args.data, args.start, args.minutes),
                                   stdout=log, stderr=subprocess.STDOUT) != 0:
                    print(f"[{arm.name}] training stopped; see {runs / (arm.name + '.log')}", file=sys.stderr)
                    return 1
        if not (evaluation / "evaluation.csv").is_file():
            print(f"[{arm.name}] evaluating", flush=True)
            subprocess.run(evaluate_command(bundle, args.data, evaluation), check=True, stdout=subprocess.DEVNULL)
        record = json.loads((bundle / "metadata.json").read_text())["training"]
        results.append((arm, record["steps"], record["wall_time_s"] / 60, mean_dice(evaluation / "evaluation.csv")))
    table = comparison_table(results)
    if args.output:
        Path(args.output).write_text(table + "\n")
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
