"""How good a quality estimate is: AUROC for detecting poor segmentations and the error of the estimated Dice."""

from __future__ import annotations

import math
from typing import Dict, Iterable, List, Mapping, Sequence

import numpy as np

POOR_DICE = 0.7  # a segmentation with mean Dice below this is one the estimate should catch


def auroc(positive: Sequence[bool], scores: Sequence[float]) -> float:
    """Area under the ROC curve of ``scores`` for ``positive`` (Mann-Whitney, ties count half); NaN with one class."""
    positive, scores = np.asarray(positive, bool), np.asarray(scores, float)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    start = 0
    while start < len(scores):  # average ranks over ties
        stop = start
        while stop + 1 < len(scores) and sorted_scores[stop + 1] == sorted_scores[start]:
            stop += 1
        ranks[order[start:stop + 1]] = (start + stop) / 2 + 1
        start = stop + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def estimate_scores(dice: Sequence[float], estimates: Sequence[float], poor: float = POOR_DICE) -> Dict[str, float]:
    """count, poor (how many below ``poor``), AUROC of the estimate for Dice < ``poor``, mean absolute error."""
    dice, estimates = np.asarray(dice, float), np.asarray(estimates, float)
    known = ~np.isnan(dice)
    dice, estimates = dice[known], estimates[known]
    bad = dice < poor
    return {
        "count": int(len(dice)),
        "poor": int(bad.sum()),
        "auroc": auroc(bad, -estimates),  # a low estimate should mean a poor segmentation
        "mae": float(np.mean(np.abs(estimates - dice))) if len(dice) else math.nan,
    }


def scores_by_set(rows: Iterable[Mapping[str, float]], sets_order: Sequence[str] = ()) -> List[Dict[str, object]]:
    """Rows with set, dice, estimate -> one summary per set (in ``sets_order`` first), then "all"."""
    rows = list(rows)
    names = [name for name in sets_order if any(r["set"] == name for r in rows)]
    names += sorted({str(r["set"]) for r in rows} - set(names))
    summaries = []
    for name in names + ["all"]:
        chosen = [r for r in rows if name == "all" or r["set"] == name]
        summary = estimate_scores([r["dice"] for r in chosen], [r["estimate"] for r in chosen])
        summaries.append({"set": name, **summary})
    return summaries


def markdown_quality(summaries: Sequence[Mapping[str, object]]) -> str:
    """A Markdown table of ``scores_by_set``'s output."""
    lines = [f"| set | volumes | Dice < {POOR_DICE} | AUROC (Dice < {POOR_DICE}) | mean abs. error |",
             "|---|---|---|---|---|"]
    for s in summaries:
        auc = "n/a (one class)" if math.isnan(float(s["auroc"])) else f"{float(s['auroc']):.3f}"
        lines.append(f"| {s['set']} | {s['count']} | {s['poor']} | {auc} | {float(s['mae']):.3f} |")
    return "\n".join(lines) + "\n"


def case_dice(score_rows: Iterable, stage: str) -> Dict[tuple, float]:
    """(set, case) -> mean Dice over the structures of ``stage`` from evaluation ScoreRows (NaN scores left out)."""
    grouped: Dict[tuple, List[float]] = {}
    for row in score_rows:
        if row.stage == stage and not math.isnan(row.dice):
            grouped.setdefault((row.set, row.case), []).append(row.dice)
    return {key: float(np.mean(values)) for key, values in grouped.items()}


def estimate_rows(score_rows: Iterable, estimates: Mapping[tuple, float], stage: str) -> List[Dict[str, object]]:
    """Rows (set, case, dice, estimate) for every case with both a true Dice of ``stage`` and an estimate."""
    dice = case_dice(score_rows, stage)
    return [{"set": key[0], "case": key[1], "dice": dice[key], "estimate": float(estimates[key])}
            for key in dice if key in estimates]
