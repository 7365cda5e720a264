"""Options several commands share, written once so their names, defaults and help cannot drift apart (the
``coopseg`` sub-commands and the Slicer worker's command line)."""

from __future__ import annotations

import argparse

from CoopSegLib.data.labels import CODINGS

DEVICE_HELP = "auto (CUDA when available), cpu, cuda[:N] (or gpu)"


def add_model_option(parser: argparse.ArgumentParser, required: bool = False,
                     help: str = "model bundle folder (default: the shipped model)") -> None:
    parser.add_argument("--model", required=required, metavar="BUNDLE", help=help)


def add_device_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help=DEVICE_HELP)


def add_second_look_option(parser: argparse.ArgumentParser) -> None:
    """--second-look / --no-second-look, on by default as in the Slicer module: a flagged result costs up to two
    more passes, and a spiked image that would come back empty gets a usable answer."""
    parser.add_argument("--second-look", action=argparse.BooleanOptionalAction, default=True,
                        help="while the quality estimate flags a result for review, segment again with an in-plane blur "
                             "(sigma 1.5, then 3 px) and keep the answer with the highest estimate (rescues spiked "
                             "images; on by default, --no-second-look segments once)")


def add_label_like_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--allow-label-like-input", action="store_true",
                        help="segment an input that looks like a label map instead of refusing it (flagged review)")


def add_ref_codes_option(parser: argparse.ArgumentParser, compared_with: str) -> None:
    """--ref-codes: how reference label files code the structures; ``compared_with`` names what auto compares."""
    parser.add_argument("--ref-codes", choices=("auto", *CODINGS), default="auto",
                        help="label codes of the reference files: canonical (1 LV, 2 MYO, 3 RV; mnms is the same), "
                             "acdc (ACDC's _gt files: 1 RV, 2 MYO, 3 LV), or auto (default): told from how the "
                             f"references agree with {compared_with}, said on stderr, refused when unclear")
