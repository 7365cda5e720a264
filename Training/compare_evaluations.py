"""Two models' evaluations of the same cases, paired: is a candidate ahead of the shipped model by more than the
subject-to-subject noise (issue 31: ship a bundle only when it gains more than the noise)?

    coopseg evaluate --model CoopSegLib/weights/default.coopseg --data DATA --subjects LIST --seed 1 --output-dir A
    coopseg evaluate --model ../runs/acdc_v6_code24/model.coopseg --data DATA --subjects LIST --seed 1 --output-dir B
    python Training/compare_evaluations.py A B [--subjects patient042,patient066] [--output FILE.md]

Reads both folders' ``evaluation.csv`` (``coopseg evaluate --model``), keeps the cases both scored (the same set,
case, stage and structure; refused when they share none, or when their corruption seeds or copies differ, which
would make the same case name two different images), and prints per test set and stage the two means, the
difference second - first and its 95% bootstrap interval over subjects, paired (``intervals.paired_difference``);
then the same per ACDC group and frame for FTN+STN on the clean frames, and each subject's role for each model
(training, development, held out: recorded by ``coopseg evaluate`` from the bundle's metadata). A difference counts
as more than the noise when its interval excludes zero; the interval is the subjects' disagreement, not the spread
of another training seed. Where one model trained on the subjects, its figures there are in-sample: the verdict
line says so.
"""

from __future__ import annotations

import argparse
import csv
import math
import sys
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from CoopSegLib.data.corruption import CORRUPTIONS  # noqa: E402
from CoopSegLib.errors import CoopSegError  # noqa: E402
from CoopSegLib.evaluation.comparison import signed_interval  # noqa: E402
from CoopSegLib.evaluation.interval_report import dice_by_subject  # noqa: E402
from CoopSegLib.evaluation.intervals import Interval, paired_difference  # noqa: E402
from CoopSegLib.evaluation.protocol import TRAINING  # noqa: E402
from CoopSegLib.evaluation.report import (ScoreRow, mean_score, ordered_sets, ordered_stages, rows_from_csv,  # noqa: E402
                                          set_title, write_text_atomically)
from CoopSegLib.vocabulary import STN  # noqa: E402

EVALUATION_CSV = "evaluation.csv"


def read_evaluation(folder: Path) -> Tuple[List[ScoreRow], Dict[str, str], Dict[str, str]]:
    """(score rows, {subject: role}, protocol: model, second look, seed, copies) of ``coopseg evaluate``'s CSV."""
    path = folder / EVALUATION_CSV if folder.is_dir() else folder
    if not path.is_file():
        raise CoopSegError(f"{folder}: no {EVALUATION_CSV} (write one with coopseg evaluate --output-dir)")
    text = path.read_text()
    records = list(csv.DictReader(text.splitlines()))
    if not records or "role" not in records[0]:
        raise CoopSegError(f"{path}: no protocol columns (role, model, ...); evaluate the model again with today's "
                           "coopseg evaluate --model")
    roles = {r["subject"]: r["role"] for r in records}
    # The artefact sets' seed and copies are blank on clean rows: the first value any row gives.
    protocol = {key: next((r[key] for r in records if r.get(key)), "")
                for key in ("model", "second_look", "seed", "copies")}
    return rows_from_csv(text), roles, protocol


def _key(row: ScoreRow) -> tuple:
    return row.set, row.case, row.stage, row.structure


def paired_rows(first: Sequence[ScoreRow], second: Sequence[ScoreRow],
                subjects: Optional[Sequence[str]] = None) -> Tuple[List[ScoreRow], List[ScoreRow]]:
    """The rows of the cases both evaluations scored (in the first's order), restricted to ``subjects``."""
    keep = (lambda row: True) if not subjects else (lambda row: row.subject in subjects)
    by_key = {_key(row): row for row in second if keep(row)}
    shared = [row for row in first if keep(row) and _key(row) in by_key]
    if not shared:
        raise CoopSegError("the two evaluations share no scored case" + (" of those subjects" if subjects else ""))
    return shared, [by_key[_key(row)] for row in shared]


def difference(first: Sequence[ScoreRow], second: Sequence[ScoreRow], stage: str, sets: Sequence[str],
               keep=lambda row: True) -> Tuple[float, float, Interval]:
    """(first's mean, second's mean, second - first with its paired interval) over ``sets`` at ``stage``."""
    def chosen(rows):
        return [row for row in rows if row.stage == stage and row.set in sets and keep(row)]

    a, b = chosen(first), chosen(second)
    return (mean_score([row.dice for row in a]), mean_score([row.dice for row in b]),
            paired_difference(dice_by_subject(b), dice_by_subject(a)))


def _interval_text(interval: Interval) -> str:
    one_subject = not math.isnan(interval.mean) and math.isnan(interval.low)
    return signed_interval(interval) + (" (one subject: no interval)" if one_subject else "")


def _columns(rows: Sequence[ScoreRow]) -> List[Tuple[str, List[str]]]:
    sets = ordered_sets(rows)
    corrupted = [s for s in sets if s in CORRUPTIONS]
    columns = [(set_title(s), [s]) for s in sets] + [("AVG", sets)]
    return columns + ([("corrupted AVG", corrupted)] if corrupted else [])


def comparison_markdown(first: Sequence[ScoreRow], second: Sequence[ScoreRow], names: Tuple[str, str],
                        roles: Tuple[Mapping[str, str], Mapping[str, str]]) -> str:
    """The whole comparison: per set and stage, per group and frame (clean, FTN+STN), the subjects' roles."""
    lines = [f"| set | stage | {names[0]} | {names[1]} | {names[1]} - {names[0]} (95% interval over subjects) |",
             "| --- | --- | ---: | ---: | ---: |"]
    for title, sets in _columns(first):
        for stage in ordered_stages(first):
            a, b, delta = difference(first, second, stage, sets)
            lines.append(f"| {title} | {stage} | {a:.4f} | {b:.4f} | {_interval_text(delta)} |")
    clean = [row for row in first if row.set == "clean"]
    for attribute, label in (("group", "ACDC group"), ("frame", "frame")):
        values = sorted({getattr(row, attribute) for row in clean if getattr(row, attribute)})
        if not values:
            continue
        lines += ["", f"Clean frames by {label} ({STN.title}):", "",
                  f"| {label} | {names[0]} | {names[1]} | difference |", "| --- | ---: | ---: | ---: |"]
        for value in values:
            a, b, delta = difference(first, second, STN.title, ["clean"],
                                     lambda row, value=value, attribute=attribute: getattr(row, attribute) == value)
            lines.append(f"| {value} | {a:.4f} | {b:.4f} | {_interval_text(delta)} |")
    subjects = sorted({row.subject for row in first if row.subject})
    lines += ["", "Each subject's role (from each bundle's record):", "",
              f"| subject | {names[0]} | {names[1]} |", "| --- | --- | --- |"]
    lines += [f"| {s} | {roles[0].get(s, '?')} | {roles[1].get(s, '?')} |" for s in subjects]
    lines += ["", verdict(first, second, names, roles, subjects)]
    return "\n".join(lines) + "\n"


def verdict(first: Sequence[ScoreRow], second: Sequence[ScoreRow], names: Tuple[str, str],
            roles: Tuple[Mapping[str, str], Mapping[str, str]], subjects: Sequence[str]) -> str:
    """One line: which model is ahead by more than the noise on the average of every set (FTN+STN), and whose
    figures are in-sample."""
    _, _, delta = difference(first, second, STN.title, ordered_sets(first))
    if math.isnan(delta.low):
        outcome = "cannot be told from the noise (too few subjects for an interval)"
    elif delta.low > 0:
        outcome = f"{names[1]} is ahead by more than the noise"
    elif delta.high < 0:
        outcome = f"{names[0]} is ahead by more than the noise"
    else:
        outcome = "neither is ahead by more than the noise"
    trained = []
    for name, role in zip(names, roles):
        count = sum(role.get(s) == TRAINING for s in subjects)
        if count:
            trained.append(f"{name} trained on {count} of the {len(subjects)} subjects")
    note = f" ({'; '.join(trained)}: its figures there are in-sample)" if trained else ""
    return f"Verdict (FTN+STN, every set): {outcome}, {_interval_text(delta)}{note}."


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", help="the baseline's coopseg evaluate folder (or its evaluation.csv)")
    parser.add_argument("second", help="the candidate's")
    parser.add_argument("--subjects", metavar="LIST", help="comma-separated subjects to compare on (default: all "
                        "both scored)")
    parser.add_argument("--names", nargs=2, metavar=("FIRST", "SECOND"), default=("baseline", "candidate"))
    parser.add_argument("--output", metavar="FILE", help="also write the Markdown there")
    args = parser.parse_args(argv)
    try:
        (rows_a, roles_a, protocol_a), (rows_b, roles_b, protocol_b) = (read_evaluation(Path(args.first)),
                                                                        read_evaluation(Path(args.second)))
        for key in ("seed", "copies"):
            if protocol_a[key] != protocol_b[key]:
                raise CoopSegError(f"the evaluations' corrupted copies differ ({key} {protocol_a[key] or '-'} "
                                   f"against {protocol_b[key] or '-'}): the same case name would be two images")
        subjects = [s.strip() for s in args.subjects.split(",")] if args.subjects else None
        first, second = paired_rows(rows_a, rows_b, subjects)
        header = (f"{args.names[0]}: {protocol_a['model']} (second look {protocol_a['second_look']}); "
                  f"{args.names[1]}: {protocol_b['model']} (second look {protocol_b['second_look']}); corruption "
                  f"seed {protocol_a['seed'] or '-'}, {protocol_a['copies'] or '-'} copies; "
                  f"{len({r.case for r in first})} cases.\n\n")
        text = header + comparison_markdown(first, second, tuple(args.names), (roles_a, roles_b))
    except CoopSegError as error:
        print(f"compare_evaluations.py: {error}", file=sys.stderr)
        return 2
    print(text)
    if args.output:
        write_text_atomically(Path(args.output), text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
