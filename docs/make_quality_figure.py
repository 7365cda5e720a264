"""Draw docs/quality_estimate.png: the quality estimate against the true Dice, held out by subject, coloured by set.

Usage (after `coopseg calibrate ... --samples S.jsonl --cross-validate`, which also writes S.artefacts.jsonl):
    python docs/make_quality_figure.py --samples S.jsonl [--stage stn]
Each subject's volumes (its clean ED/ES frames and its bias, ghosting, motion, spike copies) are estimated by a
model fitted on the OTHER subjects' clean and perturbed volumes (leave one subject out); prints the table of
docs/quality.md (AUROC for Dice < 0.7 and mean absolute error per set).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from CoopSegLib.evaluation.calibration import cross_validate, sample_from_json  # noqa: E402
from CoopSegLib.evaluation.quality_scores import POOR_DICE, markdown_quality, scores_by_set  # noqa: E402

SETS = ("clean", "bias", "ghosting", "motion", "spike")
COLOURS = {"clean": "black", "bias": "tab:blue", "ghosting": "tab:green", "motion": "tab:orange", "spike": "tab:red"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    here = Path(__file__).resolve().parent
    parser.add_argument("--samples", required=True, type=Path, help="samples of coopseg calibrate --samples")
    parser.add_argument("--stage", default="stn", choices=("stn", "ftn"))
    parser.add_argument("--output", type=Path, default=here / "quality_estimate.png")
    args = parser.parse_args()
    fit = [sample_from_json(line) for line in args.samples.read_text().splitlines() if line.strip()]
    artefacts = args.samples.with_suffix(".artefacts.jsonl").read_text().splitlines()
    scored = [s for s in fit if s.set == "clean"] + [sample_from_json(line) for line in artefacts if line.strip()]
    rows = cross_validate(fit, scored, args.stage)
    summaries = {s["set"]: s for s in scores_by_set(rows, SETS)}
    fig, axis = plt.subplots(figsize=(5.6, 5.2))
    for name in SETS:
        chosen = [r for r in rows if r["set"] == name]
        axis.scatter([r["dice"] for r in chosen], [r["estimate"] for r in chosen], s=18, color=COLOURS[name],
                     label=f"{name} (MAE {summaries[name]['mae']:.3f})", alpha=0.8)
    axis.plot([0, 1], [0, 1], color="grey", lw=0.8)
    axis.axvline(POOR_DICE, color="grey", ls=":", lw=0.8)
    axis.axhline(POOR_DICE, color="grey", ls=":", lw=0.8)
    total = summaries["all"]
    axis.set(xlim=(0, 1), ylim=(0, 1), xlabel=f"true mean Dice ({args.stage.upper()})",
             ylabel="estimated Dice (held-out subject)",
             title=f"Quality estimate, leave-one-subject-out\nAUROC (Dice < {POOR_DICE}) {total['auroc']:.3f}, "
                   f"MAE {total['mae']:.3f}, {total['count']} volumes")
    axis.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=110)
    print(markdown_quality(list(summaries.values())))
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
