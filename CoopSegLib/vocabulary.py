"""The words the library, the command line and the Slicer module share: stages, structures and their label codes,
and the quality flags. One place for each, so that a table, a file and a node name cannot disagree.

The Python standard library only: the Slicer module imports this at startup, before it knows torch is there.

Stages: each has one ``name`` (what ``--stage``, configs, columns and ``Segmenter.segment(stage=...)`` take), one
``attribute`` (the ``Segmentation`` field, the worker's file key and the Slicer node's role) and one ``title``
(report tables and TensorBoard).

>>> STAGES, stage("ftn").attribute, stage("stn").title, stage("stn").node_title
(('ftn', 'stn'), 'initial', 'FTN+STN', 'refined (FTN+STN)')
>>> [(s.code, s.column, s.name) for s in STRUCTURES][:1], STRUCTURE_CODES
([(1, 'lv', 'LV cavity')], (1, 2, 3))
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Tuple


@dataclass(frozen=True)
class Stage:
    name: str  # "ftn" / "stn"
    attribute: str  # "initial" / "refined"
    title: str  # "FTN" / "FTN+STN"
    description: str  # what it is, for help texts

    @property
    def node_title(self) -> str:
        """How the Slicer module names the stage's segmentation node: 'initial (FTN)'."""
        return f"{self.attribute} ({self.title})"


FTN = Stage("ftn", "initial", "FTN", "the fast-thinking network alone")
STN = Stage("stn", "refined", "FTN+STN", "the FTN refined by the slow-thinking network's shape prior")
ALL_STAGES: Tuple[Stage, ...] = (FTN, STN)
STAGES: Tuple[str, ...] = tuple(s.name for s in ALL_STAGES)  # ("ftn", "stn")
_BY_WORD: Dict[str, Stage] = {word: s for s in ALL_STAGES for word in (s.name, s.attribute, s.title)}


def stage(word: str) -> Stage:
    """The stage a name, attribute or title stands for; ValueError naming the choices otherwise."""
    try:
        return _BY_WORD[word]
    except KeyError:
        raise ValueError(f"unknown stage {word!r}; use one of {', '.join(STAGES)}") from None


@dataclass(frozen=True)
class Structure:
    code: int  # the project's label code, in every output
    name: str  # "LV cavity"
    key: str  # the paper's short name, report tables: "LV"
    column: str  # CSV column part: "lv" (validation's ftn_lv, the cine curve's lv_ml)
    segment_id: str  # the Slicer segment's ID: "LV_cavity"


BACKGROUND, LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY = 0, 1, 2, 3
STRUCTURES: Tuple[Structure, ...] = (
    Structure(LV_CAVITY, "LV cavity", "LV", "lv", "LV_cavity"),
    Structure(LV_MYOCARDIUM, "LV myocardium", "MYO", "myo", "LV_myocardium"),
    Structure(RV_CAVITY, "RV cavity", "RV", "rv", "RV_cavity"),
)
STRUCTURE_CODES: Tuple[int, ...] = tuple(s.code for s in STRUCTURES)  # the foreground codes
CANONICAL_CODES: Tuple[int, ...] = (BACKGROUND, *STRUCTURE_CODES)
LABEL_NAMES: Dict[int, str] = {BACKGROUND: "background", **{s.code: s.name for s in STRUCTURES}}
STRUCTURE_KEYS: Dict[int, str] = {s.code: s.key for s in STRUCTURES}
STRUCTURE_COLUMNS: Dict[int, str] = {s.code: s.column for s in STRUCTURES}

OK, REVIEW = "ok", "review"
FLAGS: Tuple[str, ...] = (OK, REVIEW)  # a quality estimate's verdict: below the threshold is "review"
