"""``coopseg evaluate``: Dice and HD95 per subject and structure, and the paper's Table 1 across test sets."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from CoopSegLib.cli.options import add_device_option, add_model_option, add_ref_codes_option, add_second_look_option
from CoopSegLib.errors import CoopSegError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="Dice and HD95 of label maps or of a model on the paper's test sets (Table 1)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Two ways to evaluate, both writing DIR/evaluation.csv (one row per case, stage and structure: Dice, HD95 in mm,
the case's subject, frame and ACDC group, and the protocol: the subject's role, the model and its weights'
sha256, the second-look state, the artefact sets' seed and copies) and DIR/evaluation.md (the protocol; Table 1's
shape: mean Dice per test set for FTN and FTN+STN, and per structure; means with 95% bootstrap intervals over
subjects, per ACDC group, per frame, and each artefact beside the clean frames it was made from), and printing
the Markdown.

A subject's role comes from the model's record: training, development (its validation subjects, which chose the
checkpoint and fitted the quality calibration: figures over them are labelled development figures), held out or
unknown. "The paper's protocol" is said only for one pass (--no-second-look).

  coopseg evaluate --pred PRED --ref REF [--ref-codes auto|acdc|canonical]
      label maps in PRED (e.g. from coopseg segment) against REF/**/<name>_gt.nii.gz (or <name>.nii.gz);
      the references' label codes are detected (and said) unless --ref-codes names them
  coopseg evaluate --model BUNDLE --data ACDC [--sets clean,bias,ghosting,motion,spike] [--site DIR]
      the model on test sets made from an ACDC-layout folder (patientNNN/Info.cfg, _frameXX.nii.gz, _gt):
        clean     ED and ES frames of every subject
        bias, ghosting, motion, spike
                  ES frames, --copies corrupted copies each (TorchIO at the paper's parameters; the same
                  files as `coopseg corrupt --seed S`); spike has exactly one spike per copy
        spike_paper
                  the authors' spike setting (num_spikes=1, which TorchIO reads as 0 or 1 spikes)
        site      ED and ES frames of another site's folder (--site: M&Ms, nnU-Net or ACDC layout)

Both also score the quality estimate where there is one (the model's, or PRED/quality.csv from coopseg segment):
per set, its AUROC for detecting Dice < 0.7 and its mean absolute error against the true mean Dice, in
DIR/evaluation.md and per case in DIR/quality_evaluation.csv.

Empty structures: absent from both prediction and reference gives Dice and HD95 NaN (left out of averages);
absent from one side gives Dice 0 and HD95 inf (counted, not averaged, in the tables).""",
    )
    parser.add_argument("--pred", metavar="DIR", help="folder of predicted label maps (canonical codes)")
    parser.add_argument("--ref", metavar="DIR", help="folder (searched recursively) of reference label maps")
    add_ref_codes_option(parser, "the predictions")
    add_model_option(parser)
    parser.add_argument("--data", metavar="DIR", help="ACDC-layout folder to build the test sets from")
    parser.add_argument("--sets", default="all",
                        help="comma-separated test sets: clean, site, bias, ghosting, motion, spike, spike_paper, "
                             "or all (default: all = clean, bias, ghosting, motion, spike; site only with --site)")
    parser.add_argument("--site", metavar="DIR", help="another site's labelled data for the 'site' set")
    parser.add_argument("--subjects", metavar="LIST",
                        help="comma-separated subject folders, or 'validation': the model's own validation subjects "
                             "from its metadata (default: all in --data)")
    parser.add_argument("--copies", type=int, default=3, metavar="N", help="corrupted copies per ES frame (3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="corruption seed of the artefact sets (default 0: the development seed, whose copies of "
                             "the validation subjects chose the model, its levers and the second look; give any "
                             "other value for figures to report)")
    parser.add_argument("--largest-component", action="store_true",
                        help="score label maps after keeping each structure's largest 3D component")
    add_second_look_option(parser)
    add_device_option(parser)
    parser.add_argument("--output-dir", metavar="DIR", default=".", help="where to write the CSV and Markdown (.)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from CoopSegLib.data.corruption import DEVELOPMENT_SEED, DEVELOPMENT_SEED_NOTE
    from CoopSegLib.evaluation.interval_report import interval_sections
    from CoopSegLib.evaluation.protocol import Protocol
    from CoopSegLib.evaluation.report import markdown_report, rows_to_csv, write_text_atomically
    from CoopSegLib.evaluation.runner import evaluate_folders, evaluate_model
    from CoopSegLib.evaluation.test_sets import build_test_sets, parse_sets

    by_files = args.pred is not None or args.ref is not None
    by_model = args.data is not None or args.model is not None
    if by_files == by_model:
        raise CoopSegError("give either --pred DIR --ref DIR, or --data DIR (with --model BUNDLE)")
    if by_files and not (args.pred and args.ref):
        raise CoopSegError("--pred and --ref go together: predicted and reference label maps")
    if by_model and not args.data:
        raise CoopSegError("--model needs --data DIR (an ACDC-layout folder to build the test sets from)")
    estimates: dict = {}  # (set, case) -> estimated Dice of the scored output
    if by_files:
        rows = evaluate_folders(args.pred, args.ref, args.ref_codes,
                                say=lambda line: print(line, file=sys.stderr, flush=True))
        estimates = written_estimates(Path(args.pred))
        protocol = Protocol(sets=tuple(dict.fromkeys(row.set for row in rows)),
                            source=f"{args.pred} against {args.ref}")
    else:
        from CoopSegLib.bundle import recorded_subjects
        from CoopSegLib.data.readers import list_acdc_subjects
        from CoopSegLib.inference.engine import Segmenter

        sets = parse_sets(args.sets, args.site)
        segmenter = Segmenter(args.model, device=args.device)
        if args.subjects == "validation":  # the subjects the model was selected on, never trained on
            subjects = recorded_subjects(segmenter.bundle.metadata, "validation")
            if not subjects:
                raise CoopSegError(f"{segmenter.bundle.path}: the model's metadata names no validation subjects")
        else:
            subjects = [s.strip() for s in args.subjects.split(",") if s.strip()] if args.subjects else None
        cases = build_test_sets(args.data, sets, subjects, args.copies, args.seed, args.site)
        rows = evaluate_model(segmenter, cases,
                              report=lambda case: print(f"{case.set}: {case.key}", file=sys.stderr, flush=True),
                              largest_component=args.largest_component, estimates=estimates,
                              second_look=args.second_look)
        evaluated = list(dict.fromkeys(row.subject for row in rows if row.subject))
        protocol = Protocol.of_model(segmenter.bundle, sets, evaluated or subjects or list_acdc_subjects(args.data),
                                     args.seed, args.copies, args.second_look, segmenter.runtime)
    output_dir = Path(args.output_dir)
    table = protocol.markdown() + "\n" + markdown_report(rows, protocol.title()) + interval_sections(rows)
    table += quality_section(rows, estimates, "prediction" if by_files else "FTN+STN", output_dir,
                             protocol.quality_label())
    csv_path = write_text_atomically(output_dir / "evaluation.csv", rows_to_csv(rows, protocol.columns))
    markdown_path = write_text_atomically(output_dir / "evaluation.md", table)
    print(table)
    print(f"wrote {csv_path} and {markdown_path}", file=sys.stderr)
    if protocol.model and protocol.artefact_sets and protocol.seed == DEVELOPMENT_SEED:
        print(DEVELOPMENT_SEED_NOTE, file=sys.stderr)
    return 0


def written_estimates(predictions: Path) -> dict:
    """(set, name) -> quality from PRED/quality.csv (``coopseg segment``'s), {} when there is none."""
    from CoopSegLib.quality_file import QUALITY_FILE, read_quality_file

    set_name = predictions.resolve().name  # the set name evaluate_folders gives label maps in a folder
    path = predictions / QUALITY_FILE
    table = read_quality_file(path) if path.is_file() else {}
    return {(set_name, name): record.quality for name, record in table.items()}


def quality_section(rows: list, estimates: dict, stage: str, output_dir: Path, label: str = "") -> str:
    """The Markdown section scoring the quality estimate, and DIR/quality_evaluation.csv; "" without estimates.
    ``label`` follows the stage in its heading (``Protocol.quality_label``: in-sample or not)."""
    from CoopSegLib.evaluation.quality_scores import estimate_rows, markdown_quality, scores_by_set
    from CoopSegLib.evaluation.report import csv_text, write_text_atomically
    from CoopSegLib.evaluation.test_sets import TEST_SETS

    scored = estimate_rows(rows, estimates, stage)
    if not scored:
        return ""
    write_text_atomically(output_dir / "quality_evaluation.csv",
                          csv_text(("set", "case", "dice", "estimate"),
                                   [(r["set"], r["case"], r["dice"], r["estimate"]) for r in scored]))
    return (f"\n## Quality estimate ({stage}{label})\n\n"
            + markdown_quality(scores_by_set(scored, list(TEST_SETS))))
