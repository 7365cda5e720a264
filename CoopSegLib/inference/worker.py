"""The worker command for out-of-process use: the 3D Slicer module runs it with Slicer's own Python (PythonSlicer)
so that no PyTorch work runs in Slicer's process, whose main thread holds the GIL while it waits for events.

    python -m CoopSegLib.inference.worker INPUT --output-dir DIR [--model BUNDLE] [--device auto|cpu|cuda[:N]]
                                          [--second-look] [--allow-label-like-input]

It segments INPUT exactly as ``coopseg segment`` does (the same ``segment_file``, stage stn, same defaults;
``--second-look`` and ``--allow-label-like-input`` as there: a label map given as the image is an "error" event)
and also writes the FTN labels of the same pass, ``DIR/NAME_initial.nii.gz``. A NRRD input (what the module sends,
written by Slicer's own storage nodes) gets NRRD outputs (``DIR/NAME.nrrd``, ``DIR/NAME_initial.nrrd``; SimpleITK,
which Slicer ships), so Slicer's Python needs no nibabel. Its stdout carries one JSON object
per line:

    {"event": "progress", "fraction": 0.42, "message": "segmenting slices 1-10 of 10"}
    {"event": "done", "device": "cpu", "files": {"refined": "DIR/NAME.nii.gz", "initial": "DIR/NAME_initial.nii.gz"}}
    {"event": "error", "message": "DIR/NAME.nii.gz: ..."}

"files" also names ``quality``: DIR/quality.csv with the row ``coopseg segment`` writes for this output (the
estimated Dice of the refined labels, its flag and the suspect slices), and for a 4D cine ``curve`` and ``indices``
(``NAME_curve.csv`` with each frame's volumes and quality, ``NAME_indices.csv``; see ``inference.files``).
"threshold" is the quality estimate's review threshold (a frame below it is flagged on the module's curve). Exit status 0 after "done", 2 after "error" (bad input or model; the message says what); anything else is
a crash, with its traceback on stderr. Outputs are written atomically, so a killed worker leaves no half-written file.
Only this module's ``main`` imports torch: the caller can use ``command`` and ``parse_event`` without it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence

PROGRESS, DONE, ERROR = "progress", "done", "error"
EXIT_ERROR = 2


def command(python: str, input_path: str, output_dir: str, model: str = "", device: str = "auto",
            second_look: bool = False, allow_label_like_input: bool = False) -> List[str]:
    """The argument list that runs this worker with the interpreter ``python``."""
    args = [python, "-m", "CoopSegLib.inference.worker", str(input_path), "--output-dir", str(output_dir),
            "--device", device]
    return (args + (["--model", str(model)] if model else []) + (["--second-look"] if second_look else [])
            + (["--allow-label-like-input"] if allow_label_like_input else []))


def parse_event(line: str) -> Optional[Dict[str, Any]]:
    """The event a worker output line holds, or None for any other line (log text, warnings, a traceback)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and event.get("event") in (PROGRESS, DONE, ERROR) else None


def _emit(**event: Any) -> None:
    print(json.dumps(event), flush=True)


def run(input_path: str, output_dir: str, model: Optional[str] = None, device: str = "auto",
        second_look: bool = False, allow_label_like_input: bool = False) -> Dict[str, Any]:
    """Segment ``input_path`` into ``output_dir``, reporting progress on stdout; the "done" event's content.
    ``second_look`` and ``allow_label_like_input``: see ``Segmenter.segment``."""
    from CoopSegLib.data.nifti import strip_nifti_suffix
    from CoopSegLib.data.nrrd import NRRD_SUFFIXES
    from CoopSegLib.inference.engine import Segmenter
    from CoopSegLib.inference.files import cine_paths, output_paths, segment_file_result
    from CoopSegLib.quality_file import QualityRecord, write_quality_file

    _emit(event=PROGRESS, fraction=0.0, message="loading model")
    segmenter = Segmenter(model or None, device=device)
    folder = Path(output_dir)
    folder.mkdir(parents=True, exist_ok=True)
    output_format = "nrrd" if Path(input_path).name.lower().endswith(NRRD_SUFFIXES) else "nifti"
    written, result = segment_file_result(
        segmenter, input_path, folder, stage="stn", initial=True, second_look=second_look,
        allow_label_like_input=allow_label_like_input, output_format=output_format,
        progress=lambda fraction, message: _emit(event=PROGRESS, fraction=fraction, message=message))
    # The same quality.csv row as coopseg segment writes for this output (the refined stage).
    name = strip_nifti_suffix(input_path)
    table = write_quality_file(folder, {name: QualityRecord.from_estimate(name, result.quality, "stn", result.blurred)})
    refined, initial = output_paths(input_path, folder, initial=True, output_format=output_format)
    files = {"refined": str(refined), "initial": str(initial), "quality": str(table)}
    if result.labels.ndim == 4:  # a cine: its volume curve (per-frame quality included) and indices too
        curve, *_, indices = cine_paths(input_path, folder)
        files.update(curve=str(curve), indices=str(indices))
    return {"device": str(segmenter.device), "files": files, "threshold": result.quality.threshold}


def main(argv: Optional[Sequence[str]] = None) -> int:
    from CoopSegLib.cli.options import add_device_option, add_label_like_option, add_model_option
    from CoopSegLib.errors import CoopSegError

    parser = argparse.ArgumentParser(prog="python -m CoopSegLib.inference.worker",
                                     description="Segment one image for the CoopSeg Slicer module; JSON lines on "
                                     "stdout (see the module docstring).")
    parser.add_argument("input", metavar="INPUT", help="image file (.nii, .nii.gz, .nrrd, .nhdr)")
    parser.add_argument("--output-dir", required=True, metavar="DIR")
    add_model_option(parser)
    add_device_option(parser)
    parser.add_argument("--second-look", action="store_true",
                        help="segment a flagged result again on an in-plane-blurred input (as coopseg segment)")
    add_label_like_option(parser)
    args = parser.parse_args(argv)
    try:
        done = run(args.input, args.output_dir, args.model, args.device, args.second_look, args.allow_label_like_input)
    except CoopSegError as error:
        _emit(event=ERROR, message=" ".join(str(error).split()))
        return EXIT_ERROR
    _emit(event=DONE, **done)
    return 0


if __name__ == "__main__":
    sys.exit(main())
