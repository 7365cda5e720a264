"""``coopseg corrupt``: corrupted copies of NIfTI volumes (bias field, ghosting, motion, spike, spike_paper)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from CoopSegLib.data.corruption import CORRUPTIONS, DEVELOPMENT_SEED, DEVELOPMENT_SEED_NOTE, corrupt_files


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "corrupt",
        help="write corrupted copies of volumes (TorchIO artefacts at the paper's parameters)",
        description="Write corrupted copies of 3D NIfTI volumes on the input's exact grid, named "
        "<name>_<kind>_<copy>.nii.gz. The input's header (sform, qform, pixdim) is kept, but not its data type: "
        "the copies are float32 whatever the input's type (an int16 input's copy takes twice the bytes, more "
        "once compressed), because the artefacts make non-integer intensities and the files hold exactly the "
        "volumes `coopseg evaluate --data` corrupts on the fly. The same --seed gives identical files. The "
        "paper's ACDC-C sets: the ES frames of the 20 ACDC test subjects, --copies 3, one run per --kind.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="3D NIfTI volume(s) (.nii or .nii.gz)")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="folder for the corrupted copies")
    parser.add_argument("--kind", required=True, choices=sorted(CORRUPTIONS), help="artefact to add")
    parser.add_argument("--copies", type=int, default=3, metavar="N", help="copies per input (default 3)")
    parser.add_argument("--seed", type=int, default=0, metavar="S",
                        help="random seed (default 0: the development seed, whose copies of the validation subjects "
                             "chose the model, its levers and the second look; give any other value for copies to "
                             "report on)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    written = corrupt_files(args.inputs, args.output_dir, args.kind, args.copies, args.seed)
    for path in written:
        print(path)
    if args.seed == DEVELOPMENT_SEED:  # said once the copies exist, so that an error stays the only line
        print(DEVELOPMENT_SEED_NOTE, file=sys.stderr, flush=True)
    return 0
