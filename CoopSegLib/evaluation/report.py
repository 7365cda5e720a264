"""Evaluation results: one row per case, stage and structure; a CSV of them and Markdown tables like Table 1.

Averages: a set's score is the mean Dice over its cases and the three structures (the paper's "average Dice");
AVG is the mean of the set scores. NaN scores (a structure absent from prediction and reference alike) are left out;
HD95 means leave out infinite values (a structure missing from only one side) and say how many there were.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import astuple, dataclass, fields
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from CoopSegLib.atomic import write_atomically
from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.metrics import STRUCTURE_CODES, structure_name
from CoopSegLib.evaluation.test_sets import TEST_SETS
from CoopSegLib.vocabulary import ALL_STAGES

PathLike = Union[str, Path]


@dataclass(frozen=True)
class ScoreRow:
    set: str
    case: str
    stage: str  # "FTN", "FTN+STN", or "prediction" for label maps read from files
    structure: str  # "LV", "MYO", "RV"
    dice: float
    hd95: float  # mm; inf when the structure is missing from one side
    subject: str = ""  # the person the case comes from (intervals resample subjects); "" when not known
    frame: str = ""  # "ED" or "ES" where the data says so
    group: str = ""  # ACDC's Info.cfg Group (NOR, MINF, DCM, HCM, RV) where there is one


CSV_FIELDS = tuple(field.name for field in fields(ScoreRow))
SCORE_FIELDS = CSV_FIELDS[:6]  # the columns of every evaluation.csv, the earliest included


def write_text_atomically(path: PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` (creating its folder) all or nothing."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text, newline=""))


def csv_text(header: Sequence[str], records: Iterable[Sequence]) -> str:
    """CSV with floats at 6 significant digits."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header)
    for record in records:
        writer.writerow([f"{value:.6g}" if isinstance(value, float) else value for value in record])
    return buffer.getvalue()


def rows_to_csv(rows: Iterable[ScoreRow], columns: Optional[Callable[[ScoreRow], Mapping[str, object]]] = None) -> str:
    """One line per row; ``columns`` (row -> column -> value) adds the columns that say how the row was made
    (``evaluation.protocol.Protocol.columns``), the same names for every row."""
    rows = list(rows)
    extra = [dict(columns(row)) if columns else {} for row in rows]
    header = CSV_FIELDS + (tuple(extra[0]) if extra else ())
    return csv_text(header, (astuple(row) + tuple(more.values()) for row, more in zip(rows, extra)))


def mean_score(values: Sequence[float]) -> float:
    """Mean of the values that are not NaN (a structure absent from both prediction and reference)."""
    values = [v for v in values if not math.isnan(v)]
    return sum(values) / len(values) if values else math.nan


def _ordered(names: Iterable[str], order: Sequence[str]) -> List[str]:
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda name: (order.index(name) if name in order else len(order), names.index(name)))


def format_dice(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.4f}"


def _hd95(values: Sequence[float]) -> str:
    finite = [v for v in values if math.isfinite(v)]
    text = f"{mean_score(finite):.2f}" if finite else "n/a"
    missing = sum(1 for v in values if math.isinf(v))
    return text + (f" ({missing} inf)" if missing else "")


def ordered_sets(rows: Iterable[ScoreRow]) -> List[str]:
    """The sets present in ``rows``, in Table 1's order."""
    return _ordered((row.set for row in rows), list(TEST_SETS))


def ordered_stages(rows: Iterable[ScoreRow]) -> List[str]:
    return _ordered((row.stage for row in rows), [s.title for s in ALL_STAGES])


def _grouped(rows: Iterable[ScoreRow]) -> Dict[tuple, List[ScoreRow]]:
    grouped: Dict[tuple, List[ScoreRow]] = {}
    for row in rows:
        grouped.setdefault((row.set, row.stage), []).append(row)
    return grouped


def set_scores(rows: Iterable[ScoreRow]) -> Dict[tuple, float]:
    """(set, stage) -> the paper's average Dice: the mean over that set's cases and the three structures."""
    return {key: mean_score([r.dice for r in group]) for key, group in _grouped(rows).items()}


def set_title(name: str) -> str:
    return TEST_SETS.get(name, name)


TABLE_TITLE = "Mean Dice over cases and structures (LV, MYO, RV), in the shape of Table 1 of Chen et al. (MICCAI 2021)"


def markdown_report(rows: Sequence[ScoreRow], title: str = TABLE_TITLE) -> str:
    """Table 1's shape (mean Dice per test set and stage, and their average) and a per-structure table.

    ``title`` heads the first table: say there how the scores were made (``evaluation.protocol``)."""
    sets, stages = ordered_sets(rows), ordered_stages(rows)
    structures = [structure_name(code) for code in STRUCTURE_CODES]
    grouped = _grouped(rows)
    scores = set_scores(rows)
    lines = [title, "",
             "| stage | " + " | ".join(set_title(s) for s in sets) + " | AVG |",
             "| --- |" + " ---: |" * (len(sets) + 1)]
    for stage in stages:
        row_scores = [scores.get((s, stage), math.nan) for s in sets]
        lines.append(f"| {stage} | " + " | ".join(format_dice(score) for score in row_scores)
                     + f" | {format_dice(mean_score(row_scores))} |")
    lines += ["", "Per structure: mean Dice and mean HD95 (mm)", "",
              "| set | stage | cases | " + " | ".join(f"{s} Dice" for s in structures) + " | "
              + " | ".join(f"{s} HD95" for s in structures) + " |",
              "| --- | --- |" + " ---: |" * (1 + 2 * len(structures))]
    for s in sets:
        for stage in stages:
            group = grouped.get((s, stage), [])
            if not group:
                continue
            by_structure = {name: [r for r in group if r.structure == name] for name in structures}
            cases = len({r.case for r in group})
            lines.append(f"| {set_title(s)} | {stage} | {cases} | "
                         + " | ".join(format_dice(mean_score([r.dice for r in by_structure[n]]))
                                      for n in structures) + " | "
                         + " | ".join(_hd95([r.hd95 for r in by_structure[n]]) for n in structures) + " |")
    return "\n".join(lines) + "\n"


def rows_from_csv(text: str) -> List[ScoreRow]:
    """Score rows back from ``rows_to_csv`` text (e.g. written by another process, or an earlier version without
    subject, frame and group); the protocol's columns after them are left out."""
    reader = csv.DictReader(io.StringIO(text))
    if reader.fieldnames is None or tuple(reader.fieldnames[:len(SCORE_FIELDS)]) != SCORE_FIELDS:
        raise CoopSegError(f"score CSV: expected the columns {', '.join(SCORE_FIELDS)}, got {reader.fieldnames}")
    return [ScoreRow(r["set"], r["case"], r["stage"], r["structure"], float(r["dice"]), float(r["hd95"]),
                     r.get("subject") or "", r.get("frame") or "", r.get("group") or "")
            for r in reader]
