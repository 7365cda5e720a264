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


def fold_rows(gain: float, subjects=("s1", "s2", "s3", "s4"), spread: float = 0.0):
    """Score rows of two methods on clean and two artefact sets: cooperative = standard + gain (+- spread)."""
    from CoopSegLib.evaluation.report import ScoreRow

    rows = {"standard": [], "cooperative": []}
    for number, subject in enumerate(subjects):
        for set_name in ("clean", "bias", "motion"):
            for structure in ("LV", "MYO", "RV"):
                base = 0.7 + 0.05 * number
                offset = gain + (spread if number % 2 else -spread)
                for method, value in (("standard", base), ("cooperative", base + offset)):
                    rows[method].append(ScoreRow(set_name, f"{subject}_{set_name}", "FTN+STN", structure, value,
                                                 1.0, subject))
    return rows


def test_fold_summary_pairs_within_folds_and_says_what_the_evidence_allows():
    from CoopSegLib.evaluation.comparison import INCONCLUSIVE, FoldSummary

    clear = FoldSummary({40: fold_rows(0.02), 20: fold_rows(0.04)}, "standard", "cooperative")
    overall = clear.difference("FTN+STN", "corrupted AVG")
    assert overall.mean == pytest.approx(0.03) and overall.low == pytest.approx(0.03)  # no spread: a point
    assert clear.difference("FTN+STN", "clean", fold=20).mean == pytest.approx(0.04)
    assert clear.verdict() == "helps"
    assert FoldSummary({40: fold_rows(-0.02), 20: fold_rows(-0.01)}, "standard", "cooperative").verdict() == "hurts"
    mixed = FoldSummary({40: fold_rows(0.01, spread=0.1), 20: fold_rows(-0.01, spread=0.1)}, "standard",
                        "cooperative")
    interval = mixed.difference("FTN+STN", "corrupted AVG")
    assert interval.low < 0 < interval.high and mixed.verdict() == INCONCLUSIVE
    table = clear.markdown()
    assert "| mean over folds | FTN+STN |" in table and "cooperative training **helps**" in table


@needs_acdc
def test_reproduce_table1_over_folds_scores_each_fold_on_its_own_test_subjects(tmp_path, bundle, capsys):
    subjects = sorted(p.name for p in ACDC_ROOT.iterdir() if p.is_dir())
    folds = {40: (subjects[:-2], subjects[-2]), 20: (subjects[1:-1], subjects[0])}  # each leaves one subject out
    arguments = ["--data", str(ACDC_ROOT), "--device", "cpu", "--output", str(tmp_path / "folds.md")]
    for seed, (train, _) in folds.items():
        runs = [with_training_record(bundle, tmp_path / f"{method}{seed}.coopseg", train, subjects[-1:] if seed == 40
                                     else subjects[-1:], seed=seed) for method in ("standard", "cooperative")]
        arguments += ["--fold", *map(str, runs)]
    assert reproduce_table1.main(arguments) == 0
    with open(tmp_path / "folds.csv", newline="") as stream:
        rows = list(csv.DictReader(stream))
    tested = {row["method"].split("@")[1]: row["case"].split("_")[0] for row in rows}
    assert tested == {"40": folds[40][1], "20": folds[20][1]}
    text = (tmp_path / "folds.md").read_text()
    assert "| mean over folds | FTN+STN | +0.0000 |" in text  # the same weights in both arms
    assert "cooperative training **inconclusive at this budget**" in text
    assert reproduce_table1.main([*arguments[:6], "--fold", *arguments[7:9], "--fold", *arguments[7:9]]) == 2
    assert "trained with seed 40" in capsys.readouterr().err

    # Equal compute: a standard run of fold 20 with twice the steps, scored on fold 20's cases beside the others.
    longer = with_training_record(bundle, tmp_path / "standard20_long.coopseg", folds[20][0], subjects[-1:],
                                  steps=200, seed=20)
    assert reproduce_table1.main([*arguments, "--equal-compute", str(longer)]) == 0
    text = (tmp_path / "folds.md").read_text()
    assert "## Equal compute (fold 20)" in text and "standard training ran 200 steps" in text
    # Every run's command and the machine it ran on, in the document.
    assert f"--config short_acdc10_cooperative --data DATA --seed 20 --run-dir {tmp_path / 'cooperative20.coopseg'}" \
        in text and f"--seed 20 --set train.steps=200 --run-dir {longer}" in text
    assert f"--equal-compute {longer}" in text and "cpu, 2 thread(s), fp32 on test-host" in text
    with open(tmp_path / "folds.csv", newline="") as stream:
        methods = {row["method"] for row in csv.DictReader(stream)}
    assert methods == {"standard@40", "cooperative@40", "standard@20", "cooperative@20",
                       f"{reproduce_table1.EQUAL_COMPUTE}@20"}
    # A run whose seed no fold has, or trained on other subjects, is refused with its reason.
    stray = with_training_record(bundle, tmp_path / "standard30.coopseg", folds[20][0], subjects[-1:], seed=30)
    assert reproduce_table1.main([*arguments, "--equal-compute", str(stray)]) == 2
    assert "seed 30, which no --fold has" in capsys.readouterr().err
    other = with_training_record(bundle, tmp_path / "standard20_other.coopseg", folds[40][0], subjects[-1:],
                                 steps=200, seed=20)
    assert reproduce_table1.main([*arguments, "--equal-compute", str(other)]) == 2
    assert "data.train_subjects differ" in capsys.readouterr().err
