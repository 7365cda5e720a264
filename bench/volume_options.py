"""Options the volume benches share (bench/inference.py, bench/quality.py): one image, a bundle, the device, the
stage and torch's thread count, checked the same way. A helper module, not a bench."""

from __future__ import annotations

import argparse
from pathlib import Path

import torch


def add_volume_options(parser: argparse.ArgumentParser, default_input: Path, model_help: str) -> None:
    parser.add_argument("--input", type=Path, default=default_input, help="NIfTI or NRRD image")
    parser.add_argument("--model", type=Path, help=model_help)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--stage", default="stn", choices=["ftn", "stn"])
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (default: torch's choice)")


def apply_volume_options(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Refuse a missing input (argparse's one line and status 2) and set the thread count."""
    if not args.input.is_file():
        parser.error(f"{args.input}: not found (pass --input, or provide ../shared/data)")
    if args.threads:
        torch.set_num_threads(args.threads)
