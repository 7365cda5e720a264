"""Table 1 of Chen et al. (MICCAI 2021) with our code: standard vs cooperative training, scored outside training.

    python Training/train.py --config short_acdc10_cooperative --data DATA --run-dir runs/short_acdc10_cooperative
    python Training/train.py --config short_acdc10_standard --data DATA --run-dir runs/short_acdc10_standard
    python Training/reproduce_table1.py --data DATA --standard runs/short_acdc10_standard \\
        --cooperative runs/short_acdc10_cooperative --output docs/table1.md

The paper's three folds (issue: is the claim answered?): one --fold STANDARD COOPERATIVE per fold (split seeds 40,
20, 10), each pair scored on its own test subjects, then the paired difference per fold and its mean over folds with
a 95% interval (bootstrap over test subjects within folds) and a verdict:

    python Training/reproduce_table1.py --data DATA --fold runs/std40 runs/coop40 --fold runs/std20 runs/coop20 \
        --fold runs/std10 runs/coop10 --output docs/table1_folds.md

Equal compute as well as equal steps: ``--equal-compute RUN`` adds a standard run of one fold's split seed trained
for more steps (about the cooperative run's wall time: twice the steps); it is scored on that fold's cases beside the
others and compared with the fold's cooperative run in a section of its own.

The two runs of a fold must share the protocol (training and validation subjects, steps, seed); the test subjects
are every subject in DATA that neither run trained or validated on. Each test case (clean ED and ES frames; ES frames under
the four TorchIO artefacts) is built once and segmented by both models. Writes the Markdown table (``--output``)
and every score (the same name with .csv).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import List, Optional, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a source checkout without installing

from CoopSegLib.bundle import read_metadata, recorded_objective  # noqa: E402
from CoopSegLib.errors import CoopSegError  # noqa: E402

PROTOCOL_KEYS = ("steps", "seed")  # with the training and validation subjects, what both runs must share
SETS = ("clean", "bias", "ghosting", "motion", "spike")
EQUAL_COMPUTE = "standard, equal compute"  # the method name of --equal-compute's run


def bundle_path(path: str) -> Path:
    """A bundle folder, or a run folder holding one (model.coopseg)."""
    path = Path(path)
    return path / "model.coopseg" if (path / "model.coopseg").is_dir() else path


def shared_protocol(standard: dict, cooperative: dict, keys=PROTOCOL_KEYS) -> dict:
    """The training record both bundles share; an error naming what differs."""
    a, b = standard["training"], cooperative["training"]
    differs = [key for key in keys if a.get(key) != b.get(key)]
    differs += [f"data.{key}" for key in ("train_subjects", "validation_subjects", "frames")
                if a["data"].get(key) != b["data"].get(key)]
    if differs:
        raise CoopSegError(f"the two models were not trained on the same protocol: {', '.join(differs)} differ")
    return a


def test_subjects(data: Path, protocol: dict, limit: int) -> List[str]:
    from CoopSegLib.data.readers import list_acdc_subjects

    used = set(protocol["data"]["train_subjects"]) | set(protocol["data"]["validation_subjects"])
    subjects = [s for s in list_acdc_subjects(data) if s not in used]
    if not subjects:
        raise CoopSegError(f"{data}: every subject there was used in training or validation; none left to test on")
    if not limit or limit >= len(subjects):
        return subjects
    # Evenly spread over the sorted list, so every ACDC group (numbered in blocks of 20) stays represented.
    return [subjects[round(i * (len(subjects) - 1) / max(limit - 1, 1))] for i in range(limit)]


def document(table: str, comparison, protocol: dict, metadata: dict, subjects: List[str], args) -> str:
    training = protocol["data"]
    corrupted = ", ".join(comparison.corrupted_sets)
    if comparison.claim_holds():
        verdict = ("holds", "Held by one training run per method, it is not yet evidence beyond the seed-to-seed "
                   "spread of training.")
    else:
        verdict = ("does not hold", "The paper's claim is **not reproduced at this budget; inconclusive**: one "
                   "training run per method, far shorter than the paper's schedule, cannot separate the methods from "
                   "the seed-to-seed spread of training.")
    limit = f" --max-subjects {args.max_subjects}" if args.max_subjects else ""
    rows = []
    for name, meta in metadata.items():
        record, config = meta["training"], recorded_objective(meta)
        rows.append(f"| {name} | {record['run']} | {record['steps']} | {record['weights_from_step']} | "
                    f"{config['learning_rate']:g} | {record['device']} | {record['wall_time_s'] / 60:.0f} min |")
    return f"""# Table 1, reproduced with CoopSeg's code: standard vs cooperative training

Mean Dice over cases and the three structures (LV, MYO, RV), in the shape of Table 1 of Chen et al. (MICCAI 2021),
on the remaining subjects of `{args.data}` (neither run trained or validated on them; not the paper's 20 ACDC test
subjects), one pass per volume (no second look), as the paper. Clean: ED and ES frames. Artefacts: ES frames
corrupted {args.copies} time(s) each with TorchIO at the paper's parameters (corruption seed {args.seed}, the same
copies as `coopseg corrupt`).
"corrupted AVG" is the mean over {corrupted}.

{table}
The target (cooperative FTN+STN >= standard on every set and >= 0.05 higher on average over the corrupted sets)
**{verdict[0]}**: FTN+STN gain {comparison.gain('FTN+STN'):+.4f} over the corrupted sets, FTN gain
{comparison.gain('FTN'):+.4f}. {verdict[1]}

## Protocol

- Training subjects ({len(training['train_subjects'])}, drawn by seed {protocol['seed']}):
  {', '.join(training['train_subjects'])}
- Validation subjects (model selection: best FTN+STN validation Dice): {', '.join(training['validation_subjects'])}
- Test subjects: the {len(subjects)} other subjects of `{args.data}` ({subjects[0]} ... {subjects[-1]}): the
  remaining ACDC training subjects, not the paper's 20 test subjects.

| model | run | steps | weights from step | Adam lr | device | training wall time |
| --- | --- | ---: | ---: | ---: | --- | ---: |
{chr(10).join(rows)}

## Regenerate

```
python Training/train.py --config short_acdc10_cooperative --data DATA --run-dir runs/short_acdc10_cooperative
python Training/train.py --config short_acdc10_standard --data DATA --run-dir runs/short_acdc10_standard
python Training/reproduce_table1.py --data DATA --standard runs/short_acdc10_standard \\
    --cooperative runs/short_acdc10_cooperative --copies {args.copies}{limit} --output {args.output}
```

Every Dice score (per case, stage and structure) is in `{Path(args.output).with_suffix('.csv').name}`.
"""


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR", help="ACDC training/ folder (patientNNN/ folders)")
    parser.add_argument("--standard", metavar="RUN", help="run folder or bundle of standard training (one fold)")
    parser.add_argument("--cooperative", metavar="RUN", help="run folder or bundle of cooperative training")
    parser.add_argument("--fold", nargs=2, action="append", metavar=("STANDARD", "COOPERATIVE"),
                        help="one fold's two runs (repeat per fold); the table then covers every fold")
    parser.add_argument("--equal-compute", metavar="RUN",
                        help="with --fold: a standard run of one fold's seed trained for more steps (equal wall time "
                        "with its cooperative run), compared with that fold's cooperative run")
    parser.add_argument("--copies", type=int, default=1, metavar="N", help="corrupted copies per ES frame (1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="corruption seed (0)")
    parser.add_argument("--max-subjects", type=int, default=0, metavar="N",
                        help="test on N subjects spread evenly over the sorted list (default: all)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--output", default="docs/table1.md", metavar="FILE", help="Markdown table (docs/table1.md)")
    args = parser.parse_args(argv)
    if bool(args.fold) == bool(args.standard or args.cooperative) or (not args.fold and not (
            args.standard and args.cooperative)):
        parser.error("give --standard and --cooperative (one fold), or one --fold STANDARD COOPERATIVE per fold")
    if args.equal_compute and not args.fold:
        parser.error("--equal-compute goes with --fold")
    if args.fold:
        return folds_main(args)
    try:
        from CoopSegLib.evaluation.comparison import Comparison, comparison_csv
        from CoopSegLib.evaluation.report import write_text_atomically

        protocol, metadata, subjects, rows = score_fold(args, args.standard, args.cooperative)
        comparison = Comparison.of(rows, "standard", "cooperative")
        table = comparison.markdown()
        output = Path(args.output)
        write_text_atomically(output.with_suffix(".csv"), comparison_csv(rows))
        write_text_atomically(output, document(table, comparison, protocol, metadata, subjects, args))
    except CoopSegError as error:
        print(f"reproduce_table1.py: {error}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {output} and {output.with_suffix('.csv')}", file=sys.stderr)
    return 0


def score_fold(args, standard: str, cooperative: str, longer: Optional[Tuple[str, dict]] = None) -> tuple:
    """(protocol, metadata, test subjects, score rows by method) of one fold's two runs, and of ``longer`` ((run,
    metadata) of a standard run with more steps: EQUAL_COMPUTE) when it was trained with this fold's seed."""
    from CoopSegLib.evaluation.comparison import evaluate_methods
    from CoopSegLib.evaluation.test_sets import build_test_sets
    from CoopSegLib.inference import Segmenter

    paths = {"standard": bundle_path(standard), "cooperative": bundle_path(cooperative)}
    metadata = {name: read_metadata(path) for name, path in paths.items()}
    protocol = shared_protocol(metadata["standard"], metadata["cooperative"])
    if longer is not None and longer[1]["training"]["seed"] == protocol["seed"]:
        try:  # the same subjects and seed; the steps differ by design
            shared_protocol(longer[1], metadata["cooperative"], keys=("seed",))
        except CoopSegError as error:
            raise CoopSegError(f"--equal-compute {longer[0]}: {error}") from None
        paths[EQUAL_COMPUTE], metadata[EQUAL_COMPUTE] = bundle_path(longer[0]), longer[1]
    subjects = test_subjects(Path(args.data), protocol, args.max_subjects)
    segmenters = {name: Segmenter(path, device=args.device) for name, path in paths.items()}
    total = len(subjects) * (2 + (len(SETS) - 1) * args.copies)
    done = []

    def report(case) -> None:
        done.append(case)
        print(f"fold {protocol['seed']}: case {len(done)}/{total}: {case.set} {case.key}", file=sys.stderr,
              flush=True)

    cases = build_test_sets(args.data, SETS, subjects, args.copies, args.seed)
    return protocol, metadata, subjects, evaluate_methods(segmenters, cases, report)


def equal_compute_section(scored: dict, seed: int, record: dict) -> str:
    """Standard training at about cooperative training's wall time against cooperative training, one fold."""
    from CoopSegLib.evaluation.comparison import FoldSummary

    rows = scored[seed]
    table = FoldSummary({seed: {"standard": rows[EQUAL_COMPUTE], "cooperative": rows["cooperative"]}}, "standard",
                        "cooperative").markdown()
    return f"""
## Equal compute (fold {seed})

A cooperative step costs about two standard steps, so at equal wall time standard training gets about twice the
steps. Here standard training ran {record['steps']} steps ({record['wall_time_s'] / 60:.0f} min) and is compared with
the fold's cooperative run above, on the same cases: is cooperative training worth its cost?

{table}"""


def regenerate_commands(args, folds: List[Tuple[int, str, str]], longer: Optional[dict]) -> str:
    """The commands that train this document's runs (``folds``: (seed, standard run, cooperative run); ``longer``:
    the equal-compute run's training record), as named in it, and write it again."""
    lines = []
    for seed, standard, cooperative in folds:
        for config, run in (("short_acdc10_standard", standard), ("short_acdc10_cooperative", cooperative)):
            lines.append(f"python Training/train.py --config {config} --data DATA --seed {seed} --run-dir {run} "
                         "--no-calibrate")
    command = ["python Training/reproduce_table1.py --data DATA"]
    command += [f"--fold {standard} {cooperative}" for _, standard, cooperative in folds]
    if longer is not None:
        lines.append(f"python Training/train.py --config short_acdc10_standard --data DATA --seed {longer['seed']} "
                     f"--set train.steps={longer['steps']} --run-dir {args.equal_compute} --no-calibrate")
        command.append(f"--equal-compute {args.equal_compute}")
    command.append(f"--copies {args.copies} --seed {args.seed}" + (f" --max-subjects {args.max_subjects}"
                                                                    if args.max_subjects else ""))
    command.append(f"--output {args.output}")
    return "\n".join(lines + [" \\\n    ".join(command)])


def folds_main(args) -> int:
    """Every fold's table, the paired differences and the verdict, in one document (and every score in CSV)."""
    try:
        from CoopSegLib.evaluation.comparison import FoldSummary, comparison_csv
        from CoopSegLib.evaluation.report import write_text_atomically

        scored, folds = {}, []
        runs = []
        longer = (args.equal_compute, read_metadata(bundle_path(args.equal_compute))) if args.equal_compute else None
        longer_record = longer[1]["training"] if longer else None
        for standard, cooperative in args.fold:
            protocol, metadata, subjects, rows = score_fold(args, standard, cooperative, longer)
            if protocol["seed"] in scored:
                raise CoopSegError(f"two --fold pairs were trained with seed {protocol['seed']}; give each fold once")
            scored[protocol["seed"]] = rows
            folds.append((protocol["seed"], standard, cooperative))
            for name, meta in metadata.items():
                record, config = meta["training"], recorded_objective(meta)
                runs.append(f"| {protocol['seed']} | {name} | {record['run']} | {record['steps']} | "
                            f"{record['weights_from_step']} | {config['learning_rate']:g} | {record['device']}, "
                            f"{record.get('threads', '?')} thread(s), {record.get('precision', '?')} on "
                            f"{record.get('host', '?')} | {record['wall_time_s'] / 60:.0f} min | {len(subjects)} |")
        if longer and EQUAL_COMPUTE not in scored.get(longer_record["seed"], {}):
            raise CoopSegError(f"--equal-compute {args.equal_compute} was trained with seed {longer_record['seed']}, "
                               "which no --fold has")
        summary = FoldSummary(scored, "standard", "cooperative")
        table = summary.markdown()
        equal = equal_compute_section(scored, longer_record["seed"], longer_record) if longer else ""
        output = Path(args.output)
        every = {f"{name}@{fold}": group for fold, rows in scored.items() for name, group in rows.items()}
        write_text_atomically(output.with_suffix(".csv"), comparison_csv(every))
        write_text_atomically(output, f"""# Table 1 over the paper's folds: standard vs cooperative training

Mean Dice over cases and the three structures (LV, MYO, RV) on each fold's ACDC subjects outside training, one
pass (no second look: the paper's protocol). Clean: ED and ES frames; artefacts: ES frames corrupted {args.copies}
time(s) each with TorchIO at the paper's parameters (corruption seed {args.seed}). A fold is named by the seed that
drew its 10 training subjects.

{table}{equal}
## Runs

| fold | method | run | steps | weights from step | Adam lr | device | training wall time | test subjects |
| ---: | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |
{chr(10).join(runs)}

## Regenerate

```
{regenerate_commands(args, folds, longer_record)}
```

Every Dice score (per fold, method, case, stage and structure) is in `{output.with_suffix('.csv').name}`.
""")
    except CoopSegError as error:
        print(f"reproduce_table1.py: {error}", file=sys.stderr)
        return 2
    print(table)
    print(f"wrote {args.output} and {Path(args.output).with_suffix('.csv')}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
