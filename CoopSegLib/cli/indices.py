"""``coopseg indices``: ventricular volumes, stroke volumes, ejection fractions and LV mass from ED/ES label maps."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, List

from CoopSegLib.cli.options import add_ref_codes_option
from CoopSegLib.errors import CoopSegError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "indices",
        help="clinical indices (EDV, ESV, SV, EF, LV mass) from end-diastolic and end-systolic label maps",
        description="Compute LV and RV end-diastolic and end-systolic volumes (mL), stroke volumes (mL), ejection "
        "fractions (%) and the LV myocardial mass (g, at 1.05 g/mL, from the ED myocardium) from ED and ES label "
        "maps (canonical codes: 1 LV cavity, 2 LV myocardium, 3 RV cavity; e.g. from coopseg segment). Voxel "
        "volumes come from each file's affine. With --ref-ed and --ref-es, reference values and differences "
        "(value - reference) are added. Prints a table; --output writes CSV or JSON (by its extension).",
    )
    parser.add_argument("ed", metavar="ED", help="end-diastolic label map (.nii, .nii.gz, .nrrd)")
    parser.add_argument("es", metavar="ES", help="end-systolic label map")
    parser.add_argument("--ref-ed", metavar="FILE", help="reference (e.g. manual) end-diastolic label map")
    parser.add_argument("--ref-es", metavar="FILE", help="reference end-systolic label map")
    add_ref_codes_option(parser, "ED and ES")
    parser.add_argument("--output", metavar="FILE", help="write the table as .csv or .json")
    parser.set_defaults(func=run)


def _number(value: Any) -> str:
    if value is None:
        return ""
    return "n/a" if math.isnan(value) else f"{value:.2f}"


def _table(rows: List[Any], with_reference: bool) -> str:
    header = ["index", "unit", "value"] + (["reference", "difference"] if with_reference else [])
    body = [[row.description, row.unit, _number(row.value)]
            + ([_number(row.reference), _number(row.difference)] if with_reference else []) for row in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) if i < 2 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
             for line in [header] + body]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from CoopSegLib.data.labels import IDENTITY, remap_labels
    from CoopSegLib.data.nifti import strip_nifti_suffix
    from CoopSegLib.evaluation.coding import AUTO, reference_codes
    from CoopSegLib.evaluation.indices import clinical_indices, compare_indices, index_records, indices_csv
    from CoopSegLib.evaluation.report import write_text_atomically
    from CoopSegLib.evaluation.runner import read_label_volume

    if (args.ref_ed is None) != (args.ref_es is None):
        raise CoopSegError("--ref-ed and --ref-es go together")
    output = Path(args.output) if args.output else None
    if output is not None and output.suffix.lower() not in (".csv", ".json"):
        raise CoopSegError(f"{output}: --output must end in .csv or .json")
    ed, es = read_label_volume(Path(args.ed), IDENTITY), read_label_volume(Path(args.es), IDENTITY)
    values = clinical_indices(ed.array, ed.affine, es.array, es.affine)
    reference = None
    if args.ref_ed is not None:
        ref_ed = read_label_volume(Path(args.ref_ed), IDENTITY)  # as stored: remapped once the codes are known
        ref_es = read_label_volume(Path(args.ref_es), IDENTITY)
        if args.ref_codes == AUTO and (ed.shape != ref_ed.shape or es.shape != ref_es.shape):
            raise CoopSegError("--ref-codes auto compares each label map with its reference voxel by voxel, but "
                               "their shapes differ; pass --ref-codes acdc, canonical or mnms")
        codes = reference_codes(args.ref_codes, [(ed.array, ref_ed.array), (es.array, ref_es.array)],
                                [strip_nifti_suffix(args.ref_ed), strip_nifti_suffix(args.ref_es)],
                                say=lambda line: print(line, file=sys.stderr, flush=True))
        ed_codes = remap_labels(ref_ed.array, codes, args.ref_ed)
        es_codes = remap_labels(ref_es.array, codes, args.ref_es)
        reference = clinical_indices(ed_codes, ref_ed.affine, es_codes, ref_es.affine)
    rows = compare_indices(values, reference)
    print(_table(rows, reference is not None))
    if output is not None:
        if output.suffix.lower() == ".json":
            records = index_records(rows)
            # NaN (an ejection fraction with an empty ED cavity) becomes null: JSON has no NaN.
            clean = [{k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
                     for r in records]
            text = json.dumps({"ed": args.ed, "es": args.es, "ref_ed": args.ref_ed, "ref_es": args.ref_es,
                               "indices": clean}, indent=2) + "\n"
        else:
            text = indices_csv(rows)
        write_text_atomically(output, text)
    return 0
