"""Headless training of CoopSeg models.

    python Training/train.py                                   # the phantom demo model, then a demo picture
    python Training/train.py --config Training/configs/paper_acdc10_cooperative.yaml --data /path/to/ACDC/training
    python Training/train.py --config ... --data ... --set train.steps=2000 --set train.batch_size=16 --seed 20
    python Training/train.py --config own_data --data my_cases.csv     # your image,label CSV, from the shipped model
    python Training/train.py --resume runs/paper_acdc10_cooperative-20261123-101500 [--set train.steps=20000]
    torchrun --nproc_per_node 4 Training/train.py --config ... --data ...   # one process per GPU

The bundle written at the end gets its quality calibration (``coopseg calibrate``) fitted on the run's validation
subjects, clean and perturbed, unless --no-calibrate is given or the run has no validation subjects.

Ctrl-C finishes the current step, writes a checkpoint and exits with status 130; ``--resume RUN_DIR`` continues
exactly where it stopped. Configuration or data problems stop the run before training with one line naming the
key or file (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

from CoopSegLib.errors import CoopSegError  # noqa: E402
from CoopSegLib.training.loop import load_run_settings, run_training  # noqa: E402
from CoopSegLib.training.settings import TrainingSettings  # noqa: E402

CONFIG_DIR = Path(__file__).resolve().parent / "configs"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"Shipped configurations ({CONFIG_DIR}): "
        + ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))),
    )
    parser.add_argument("--config", metavar="FILE", help="YAML settings (a name from Training/configs also works)")
    parser.add_argument("--data", metavar="DIR", help="data folder (sets data.root)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one setting, e.g. --set train.steps=2000 (repeatable)")
    parser.add_argument("--seed", type=int, help="random seed: weights, data order, augmentation, split (train.seed)")
    parser.add_argument("--device", help="auto, cpu, cuda or cuda:N; gpu means cuda (train.device)")
    parser.add_argument("--name", help="run name (the folder is OUTPUT_ROOT/NAME-<date>-<time>)")
    parser.add_argument("--output-root", metavar="DIR", help="where run folders go (default runs/)")
    parser.add_argument("--run-dir", metavar="DIR", help="exact run folder to create (instead of a dated one)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue this run from its last checkpoint")
    parser.add_argument("--no-calibrate", action="store_true",
                        help="leave the bundle's quality estimate uncalibrated (skip fitting it on the validation "
                             "subjects after training)")
    return parser


def resolve_config(name: str) -> Path:
    path = Path(name)
    if not path.exists() and not path.suffix and (CONFIG_DIR / f"{name}.yaml").exists():
        return CONFIG_DIR / f"{name}.yaml"
    return path


def settings_from_arguments(args: argparse.Namespace) -> TrainingSettings:
    overrides = list(args.overrides)
    for option, key in (("data", "data.root"), ("seed", "train.seed"), ("device", "train.device"),
                        ("name", "name"), ("output_root", "output_root")):
        value = getattr(args, option)
        if value is not None:
            overrides.append(f"{key}={value}")
    if args.resume:
        if args.config:
            raise CoopSegError("--resume continues a run with its own settings; leave out --config")
        return load_run_settings(Path(args.resume), overrides)
    if args.config:
        return TrainingSettings.from_yaml(resolve_config(args.config), overrides)
    return TrainingSettings.from_mapping({}, overrides, source="the embedded default")


def calibrate_quality(settings: TrainingSettings, bundle: Path) -> None:
    """Fit the written bundle's quality estimate on the run's own validation subjects (never its training ones),
    with the flipped look, as the shipped bundle's (docs/quality.md)."""
    from CoopSegLib.bundle import read_metadata, recorded_subjects
    from CoopSegLib.evaluation.calibration import calibrate_bundle
    from CoopSegLib.training.run_data import read_cases

    subjects = recorded_subjects(read_metadata(bundle), "validation")
    if not subjects:
        print("quality estimate: no validation subjects, the bundle stays uncalibrated", file=sys.stderr)
        return
    cases = [case for case in read_cases(settings, subjects) if case.subject in subjects]

    def report(done: int, total: int, item) -> None:
        if done % 10 == 0 or done + 1 == total:
            print(f"calibrating the quality estimate: volume {done + 1} of {total}", file=sys.stderr, flush=True)

    calibration, _ = calibrate_bundle(bundle, cases, device=settings.train.device, report=report, flipped_look=True)
    print(f"quality estimate calibrated on {len(subjects)} validation subject(s), "
          f"{calibration['fitted_on']['volumes']} volumes")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = settings_from_arguments(args)
        run_dir = Path(args.resume or args.run_dir) if (args.resume or args.run_dir) else None
        outcome = run_training(settings, run_dir, resume=bool(args.resume))
    except CoopSegError as error:
        print(f"train.py: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("train.py: stopped at once (second Ctrl-C); the last periodic checkpoint is the resume point",
              file=sys.stderr)
        return 130
    if outcome.interrupted:
        print(f"stopped by {outcome.interrupted} after step {outcome.step} of {outcome.total_steps}; checkpoint saved."
              f"\ncontinue with: python Training/train.py --resume {outcome.run_dir}")
        return 130
    if outcome.bundle is None:  # a non-zero torchrun rank: rank 0 reports
        return 0
    if not args.no_calibrate:
        try:
            calibrate_quality(settings, outcome.bundle)
        except CoopSegError as error:  # the bundle is complete and usable; only its estimate stays uncalibrated
            print(f"train.py: warning: the quality estimate stays uncalibrated ({error}); fit it later with "
                  f"coopseg calibrate --model {outcome.bundle} --data DIR", file=sys.stderr)
    print(f"report: {outcome.run_dir / 'report.md'}")
    print(f"model bundle: {outcome.bundle}")
    print(f"  segment with it: coopseg segment INPUT.nii.gz --output-dir OUTPUT --model {outcome.bundle}")
    if settings.data.format == "phantom":
        show_demo(settings, outcome)
    return 0


def show_demo(settings: TrainingSettings, outcome) -> None:
    """The phantom demo model segments a phantom subject it never saw, through the inference code, and draws it."""
    from CoopSegLib.training.demo import run_demo

    demo = run_demo(outcome.bundle, outcome.run_dir, settings.data.phantom_seed, settings.data.phantom_subjects,
                    settings.train.device)
    print(f"demo: the phantom demo model on {demo.subject}, never seen in training: mean Dice FTN "
          f"{demo.dice_ftn:.2f}, FTN+STN {demo.dice_stn:.2f}")
    print(f"  picture (input, FTN, FTN+STN): {demo.picture}" if demo.picture else f"  no picture: {demo.note}")


if __name__ == "__main__":
    sys.exit(main())
