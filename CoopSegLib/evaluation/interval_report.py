"""evaluation.md's sections of means with 95% bootstrap intervals over subjects (``evaluation.intervals``).

Per set and stage; then, for the last stage scored (FTN+STN, or the label maps read from files), per ACDC group
and per frame where the data says so, and each artefact set beside the clean frames it was made from (the same
subjects' clean ES frames, the difference resampled paired). A row without a subject (label maps read from files)
is its own unit.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Sequence

from CoopSegLib.data.corruption import CORRUPTIONS
from CoopSegLib.evaluation.intervals import Interval, by_subject, paired_difference, subject_interval
from CoopSegLib.evaluation.report import ScoreRow, ordered_sets, ordered_stages, set_title

HEADER = ("Means over cases and structures with 95% bootstrap intervals (percentile, 2000 resamples of the "
          "subjects, seed 0)")


def _unit(row: ScoreRow) -> str:
    return row.subject or row.case


def dice_by_subject(rows: Sequence[ScoreRow]) -> Dict[str, list]:
    """subject -> every Dice of its rows (cases x structures)."""
    return by_subject([(_unit(row), row.dice) for row in rows])


def rows_interval(rows: Sequence[ScoreRow]) -> Interval:
    return subject_interval(dice_by_subject(rows))


def _cases(rows: Sequence[ScoreRow]) -> int:
    return len({row.case for row in rows})


def _select(rows: Sequence[ScoreRow], keep: Callable[[ScoreRow], bool]) -> List[ScoreRow]:
    return [row for row in rows if keep(row)]


def _breakdown(rows: Sequence[ScoreRow], stage: str, key: Callable[[ScoreRow], str], title: str) -> List[str]:
    """One line per (value of ``key``, set) of the ``stage`` rows; [] when no row has a value."""
    values = sorted({key(row) for row in rows if row.stage == stage and key(row)})
    if not values:
        return []
    column = title.split()[-1].lower()
    lines = ["", f"{title} ({stage})", "", f"| {column} | set | subjects | cases | mean Dice [95%] |",
             "| --- | --- | ---: | ---: | ---: |"]
    for value in values:
        for set_name in ordered_sets(rows):
            chosen = _select(rows, lambda r: r.stage == stage and r.set == set_name and key(r) == value)
            if chosen:
                interval = rows_interval(chosen)
                lines.append(f"| {value} | {set_title(set_name)} | {interval.subjects} | {_cases(chosen)} | "
                             f"{interval.text()} |")
    return lines


def _beside_clean(rows: Sequence[ScoreRow], stage: str) -> List[str]:
    """Each artefact set beside the clean frames of the same subjects and frame (ES), and the paired difference."""
    artefacts = [s for s in ordered_sets(rows) if s in CORRUPTIONS]
    if not artefacts:
        return []
    lines = ["", f"Each artefact beside the clean frames it was made from ({stage}; the same subjects' clean frames, "
             "difference resampled paired)", ""]
    clean = _select(rows, lambda r: r.set == "clean" and r.stage == stage)
    if not clean:
        return lines + ["The clean set was not evaluated: add clean to --sets to compare."]
    lines += ["| set | subjects | artefact | clean (same frames) | difference [95%] |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for set_name in artefacts:
        corrupted = _select(rows, lambda r: r.set == set_name and r.stage == stage)
        sources = {(_unit(r), r.frame) for r in corrupted}
        made_from = _select(clean, lambda r: (_unit(r), r.frame) in sources)
        difference = paired_difference(dice_by_subject(corrupted), dice_by_subject(made_from))
        lines.append(f"| {set_title(set_name)} | {difference.subjects} | {rows_interval(corrupted).text()} | "
                     f"{rows_interval(made_from).text()} | {difference.text()} |")
    return lines


def interval_sections(rows: Sequence[ScoreRow]) -> str:
    """The Markdown sections described in the module docstring ("" without rows)."""
    if not rows:
        return ""
    lines = ["", f"## {HEADER}", ""]
    if not any(row.subject for row in rows):
        lines += ["No subjects are known (label maps read from files): each case is resampled as its own unit.", ""]
    lines += ["| set | stage | subjects | cases | mean Dice [95%] |", "| --- | --- | ---: | ---: | ---: |"]
    stages = ordered_stages(rows)
    for set_name in ordered_sets(rows):
        for stage in stages:
            chosen = _select(rows, lambda r: r.set == set_name and r.stage == stage)
            if chosen:
                interval = rows_interval(chosen)
                lines.append(f"| {set_title(set_name)} | {stage} | {interval.subjects} | {_cases(chosen)} | "
                             f"{interval.text()} |")
    last = stages[-1]
    lines += _breakdown(rows, last, lambda r: r.group, "Per ACDC group")
    lines += _breakdown(rows, last, lambda r: r.frame, "Per frame")
    lines += _beside_clean(rows, last)
    return "\n".join(lines) + "\n"
