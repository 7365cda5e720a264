"""Training/compare_evaluations.py: two models' coopseg evaluate folders, paired over subjects."""

import sys

import numpy as np
import pytest

from CoopSegLib.evaluation.protocol import Protocol
from CoopSegLib.evaluation.report import ScoreRow, rows_to_csv
from data_helpers import REPO

sys.path.insert(0, str(REPO / "Training"))
import compare_evaluations  # noqa: E402  (Training/compare_evaluations.py)

SUBJECTS = [f"patient{n:03d}" for n in (2, 22, 42, 62, 82, 66)]
GROUPS = dict(zip(SUBJECTS, ("DCM", "HCM", "MINF", "NOR", "RV", "MINF")))


def rows_of(dice, sets=("clean", "motion")):
    """Score rows shaped like coopseg evaluate's: per subject ED + ES clean and one ES motion copy, both stages, three
    structures; ``dice(subject, set, frame)`` gives the Dice."""
    rows = []
    for subject in SUBJECTS:
        cases = [("clean", f"{subject}_{frame}", frame) for frame in ("ED", "ES")]
        cases += [(s, f"{subject}_ES_{s}_1", "ES") for s in sets if s != "clean"]
        for set_name, case, frame in cases:
            for stage in ("FTN", "FTN+STN"):
                for structure in ("LV", "MYO", "RV"):
                    rows.append(ScoreRow(set_name, case, stage, structure, dice(subject, set_name, frame), 3.0,
                                         subject, frame, GROUPS[subject]))
    return rows


def write(folder, rows, roles, seed=1, model="bundle.coopseg"):
    protocol = Protocol(model=model, second_look=True, sets=("clean", "motion"), seed=seed, copies=1, roles=roles)
    folder.mkdir()
    (folder / "evaluation.csv").write_text(rows_to_csv(rows, protocol.columns))
    return folder


def spread(subject, set_name, frame):
    """A Dice that differs between subjects, sets and frames, as real ones do."""
    return 0.6 + 0.05 * SUBJECTS.index(subject) + (0.1 if set_name == "clean" else 0.0) + (0.02 if frame == "ED" else 0)


def test_a_candidate_ahead_on_every_case_is_ahead_by_more_than_the_noise(tmp_path, capsys):
    held_out = {s: "held out" for s in SUBJECTS}
    trained = {**held_out, SUBJECTS[0]: "training", SUBJECTS[1]: "training"}
    rng = np.random.default_rng(0)
    gains = {s: 0.02 + 0.01 * rng.random() for s in SUBJECTS}  # every subject gains, by different amounts
    first = write(tmp_path / "v4", rows_of(spread), trained)
    second = write(tmp_path / "v6", rows_of(lambda s, t, f: spread(s, t, f) + gains[s]), held_out)
    assert compare_evaluations.main([str(first), str(second), "--names", "v4", "v6",
                                     "--output", str(tmp_path / "c.md")]) == 0
    text = (tmp_path / "c.md").read_text()
    assert text.strip() == capsys.readouterr().out.strip()  # what it prints is what it writes
    average = next(line for line in text.splitlines() if line.startswith("| AVG | FTN+STN |"))
    cells = [c.strip() for c in average.strip("|").split("|")]
    expected = float(np.mean(list(gains.values())))  # every subject contributes the same number of cases
    assert float(cells[4].split()[0]) == pytest.approx(expected, abs=1e-4)
    low, high = (float(v) for v in cells[4].split("[")[1].rstrip("]").split(","))
    assert 0 < low < expected < high
    assert "v6 is ahead by more than the noise" in text
    assert "v4 trained on 2 of the 6 subjects: its figures there are in-sample" in text
    assert "| patient002 | training | held out |" in text
    # Per group: HCM has one subject here (no interval); MINF two.
    assert f"| HCM | {spread(SUBJECTS[1], 'clean', 'ED') / 2 + spread(SUBJECTS[1], 'clean', 'ES') / 2:.4f} |" in text
    assert "| MINF |" in text and "one subject: no interval" in text


def test_same_answers_are_within_the_noise_and_a_subject_list_narrows_the_comparison(tmp_path, capsys):
    roles = {s: "held out" for s in SUBJECTS}
    first = write(tmp_path / "a", rows_of(spread), roles)
    noise = np.random.default_rng(1).normal(0, 0.03, len(SUBJECTS))
    second = write(tmp_path / "b", rows_of(lambda s, t, f: spread(s, t, f) + noise[SUBJECTS.index(s)]
                                           * (1 if SUBJECTS.index(s) % 2 else -1)), roles)
    assert compare_evaluations.main([str(first), str(second)]) == 0
    out = capsys.readouterr().out
    assert "neither is ahead by more than the noise" in out
    assert compare_evaluations.main([str(first), str(second), "--subjects", "patient042,patient066"]) == 0
    out = capsys.readouterr().out
    assert "| patient042 |" in out and "| patient002 |" not in out and "6 cases" in out
    assert compare_evaluations.main([str(first), str(second), "--subjects", "patient042"]) == 0
    assert "cannot be told from the noise (too few subjects for an interval)" in capsys.readouterr().out


def test_different_copies_or_no_shared_case_are_refused(tmp_path, capsys):
    roles = {s: "held out" for s in SUBJECTS}
    first = write(tmp_path / "seed1", rows_of(spread), roles, seed=1)
    other_seed = write(tmp_path / "seed2", rows_of(spread), roles, seed=2)
    assert compare_evaluations.main([str(first), str(other_seed)]) == 2
    assert "seed 1 against 2" in capsys.readouterr().err
    assert compare_evaluations.main([str(first), str(first), "--subjects", "patient099"]) == 2
    assert "share no scored case of those subjects" in capsys.readouterr().err
    assert compare_evaluations.main([str(first), str(tmp_path / "missing")]) == 2
    assert "no evaluation.csv" in capsys.readouterr().err
