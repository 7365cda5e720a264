"""Table 1 comparisons: set scores, gains and the claim check; Training/reproduce_table1.py on real ACDC."""

import csv
import math
import sys

import numpy as np
import pytest

from CoopSegLib.evaluation.comparison import Comparison
from CoopSegLib.evaluation.metrics import overlap_scores
from CoopSegLib.evaluation.report import ScoreRow
from data_helpers import ACDC_ROOT, REPO, needs_acdc
from inference_helpers import with_training_record

sys.path.insert(0, str(REPO / "Training"))
import reproduce_table1  # noqa: E402  (Training/reproduce_table1.py)

SETS = ("clean", "bias", "ghosting", "motion", "spike")


def rows_with(scores):
    """Score rows whose per-set Dice is ``scores[set]`` for every structure of two cases, FTN+STN only."""
    return [ScoreRow(s, f"case{c}", "FTN+STN", structure, scores[s], 1.0)
            for s in scores for c in (1, 2) for structure in ("LV", "MYO", "RV")]


def test_gains_and_the_claim_check():
    standard = dict(zip(SETS, (0.90, 0.70, 0.80, 0.75, 0.40)))
    better = {s: v + (0.01 if s == "clean" else 0.08) for s, v in standard.items()}
    comparison = Comparison.of({"standard": rows_with(standard), "cooperative": rows_with(better)},
                               "standard", "cooperative")
    assert comparison.sets == list(SETS) and comparison.corrupted_sets == list(SETS[1:])
    assert comparison.gain("FTN+STN", "clean") == pytest.approx(0.01)
    assert comparison.gain("FTN+STN") == pytest.approx(0.08)
    assert comparison.claim_holds()
    assert not comparison.claim_holds(margin=0.09)
    worse_on_clean = {**better, "clean": 0.89}
    comparison = Comparison.of({"standard": rows_with(standard), "cooperative": rows_with(worse_on_clean)},
                               "standard", "cooperative")
    assert not comparison.claim_holds()  # 0.08 better on the artefacts, but below standard on clean
    table = comparison.markdown()
    assert "| cooperative - standard | FTN+STN | -0.0100 | +0.0800 |" in table
    assert math.isnan(comparison.gain("FTN"))  # no FTN rows given


def test_dice_without_distances_matches_and_leaves_hd95_out():
    rng = np.random.default_rng(0)
    reference = rng.integers(0, 4, (20, 20, 3))
    prediction = np.where(rng.random(reference.shape) < 0.2, 0, reference)
    full = overlap_scores(prediction, reference, (1.5, 1.5, 8.0))
    quick = overlap_scores(prediction, reference, (1.5, 1.5, 8.0), distances=False)
    assert [s.dice for s in quick.values()] == [s.dice for s in full.values()]
    assert all(math.isnan(s.hd95) for s in quick.values()) and all(math.isfinite(s.hd95) for s in full.values())


@needs_acdc
def test_reproduce_table1_scores_both_models_on_the_same_held_out_cases(tmp_path, bundle, capsys):
    subjects = sorted(p.name for p in ACDC_ROOT.iterdir() if p.is_dir())
    train, held, validation = subjects[:-2], subjects[-2], subjects[-1:]
    standard = with_training_record(bundle, tmp_path / "standard.coopseg", train, validation)
    cooperative = with_training_record(bundle, tmp_path / "cooperative.coopseg", train, validation)
    output = tmp_path / "docs" / "table1.md"
    assert reproduce_table1.main(["--data", str(ACDC_ROOT), "--standard", str(standard), "--cooperative",
                                  str(cooperative), "--device", "cpu", "--output", str(output)]) == 0
    with open(output.with_suffix(".csv"), newline="") as stream:
        rows = list(csv.DictReader(stream))
    held_out = {row["case"].split("_")[0] for row in rows}
    assert held_out == {held}  # the one subject neither trained nor validated on
    # 2 methods x (2 clean frames + 4 artefacts x 1 copy) x 2 stages x 3 structures
    assert len(rows) == 2 * 6 * 2 * 3
    by_method = {m: [(r["set"], r["case"], r["stage"], r["structure"], r["dice"]) for r in rows if r["method"] == m]
                 for m in ("standard", "cooperative")}
    assert by_method["standard"] == by_method["cooperative"]  # the same weights on the same cases
    text = output.read_text()
    assert "| cooperative - standard | FTN+STN | +0.0000 |" in text and "**does not hold**" in text
    assert "**not reproduced at this budget; inconclusive**" in text and "not the paper's 20 test subjects" in text
    assert "python Training/reproduce_table1.py" in text and "Test subjects: the 1 other" in text


def test_reproduce_table1_refuses_models_from_different_protocols(tmp_path, bundle, capsys):
    standard = with_training_record(bundle, tmp_path / "a.coopseg", ["patient001"], ["patient002"], steps=100)
    cooperative = with_training_record(bundle, tmp_path / "b.coopseg", ["patient001"], ["patient002"], steps=200)
    output = tmp_path / "table1.md"
    assert reproduce_table1.main(["--data", str(tmp_path), "--standard", str(standard), "--cooperative",
                                  str(cooperative), "--output", str(output)]) == 2
    assert "steps differ" in capsys.readouterr().err and not output.exists()


def test_seed_summary_gives_mean_and_sd_over_seeds_and_checks_the_claim_on_the_means():
    from CoopSegLib.evaluation.comparison import SeedSummary

    standard = dict(zip(SETS, (0.90, 0.70, 0.80, 0.75, 0.40)))
    comparisons = {}
    for seed, lift in ((40, 0.04), (20, 0.08)):  # cooperative gains 0.04 and 0.08 on every artefact set
        better = {s: v + (0.0 if s == "clean" else lift) for s, v in standard.items()}
        comparisons[seed] = Comparison.of({"standard": rows_with(standard), "cooperative": rows_with(better)},
                                          "standard", "cooperative")
    summary = SeedSummary(comparisons)
    assert summary.gains("FTN+STN") == pytest.approx([0.04, 0.08])
    assert summary.mean_gain("FTN+STN") == pytest.approx(0.06)
    assert summary.claim_holds() and not summary.claim_holds(margin=0.07)
    table = summary.markdown()
    sd = float(np.std([0.04, 0.08], ddof=1))
    assert f"| cooperative - standard | FTN+STN | +0.0000 ± 0.0000 | +{0.06:.4f} ± {sd:.4f} |" in table
    assert "| standard | FTN+STN | 0.9000 ± 0.0000 |" in table
    one = SeedSummary({40: comparisons[40]}).markdown()  # one seed: no SD to give
    assert "| cooperative - standard | FTN+STN | +0.0000 | +0.0400 |" in one


def test_score_rows_survive_a_csv_round_trip():
    from CoopSegLib.errors import CoopSegError
    from CoopSegLib.evaluation.report import rows_from_csv, rows_to_csv

    rows = rows_with(dict(zip(SETS, (0.91, 0.7, 0.8, 0.75, 0.123456))))
    assert rows_from_csv(rows_to_csv(rows)) == rows
    with pytest.raises(CoopSegError, match="expected the columns"):
        rows_from_csv("set,case\nclean,a\n")
