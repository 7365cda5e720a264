"""The `coopseg` command: one sub-command per module in this package.

Each sub-command module exposes ``register(subparsers)`` which adds its parser and sets ``func`` to a callable
taking the parsed arguments and returning an exit status. User errors (CoopSegError) become one line on stderr
and exit status 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from typing import Optional, Sequence

from CoopSegLib import __version__
from CoopSegLib.errors import CoopSegError

# Sub-command modules, imported lazily by name so that `coopseg --help` stays fast.
SUBCOMMANDS: tuple = ("segment", "evaluate", "indices", "corrupt", "calibrate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="coopseg",
        description="Robust cardiac MR segmentation (LV cavity, LV myocardium, RV cavity) with CoopSeg.",
    )
    parser.add_argument("--version", action="version", version=f"CoopSeg {__version__}")
    subparsers = parser.add_subparsers(title="commands", dest="command", metavar="COMMAND")
    for name in SUBCOMMANDS:
        importlib.import_module(f"CoopSegLib.cli.{name}").register(subparsers)
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "func", None) is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(args.func(args) or 0)
    except CoopSegError as error:
        print(f"coopseg {args.command}: error: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"coopseg {args.command}: interrupted", file=sys.stderr)
        return 130
