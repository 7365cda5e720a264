"""What a run records (rank 0 only): losses.csv, validation.csv and TensorBoard scalars and pictures.

TensorBoard names follow the paper (eq. 1 and eq. 5):

    L_std/L_rec       L_rec(x', x)        reconstruction of the clean image
    L_std/L_seg       L_seg(p, y)         FTN segmentation
    L_std/L_shp_pred  L_shp(C(p), y)      STN on the FTN's prediction
    L_std/L_shp_gt    L_shp(C(y), y)      STN on the ground truth
    L_hard/L_rec      L_rec(D_i(E(x_hat)), x)
    L_hard/L_seg      L_seg(p_bar, y)     FTN on the corrupted image x_hat
    L_hard/L_shp_pred L_shp(C(p_bar), y)
    L_hard/L_shp_corrupt  L_shp(C(p_hat), y)  STN on the corrupted segmentation p_hat
    L_total           the sum that is minimised

On resume, rows and events after the checkpoint's step are dropped, so the logs read as one uninterrupted run.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Mapping, Optional

import torch

from CoopSegLib import vocabulary
from CoopSegLib.errors import ConfigError

PAPER_NAMES = {
    "total": "L_total",
    "std/rec": "L_std/L_rec", "std/seg": "L_std/L_seg", "std/shp_pred": "L_std/L_shp_pred",
    "std/shp_gt": "L_std/L_shp_gt", "hard/rec": "L_hard/L_rec", "hard/seg": "L_hard/L_seg",
    "hard/shp_pred": "L_hard/L_shp_pred", "hard/shp_corrupt": "L_hard/L_shp_corrupt",
}
# Label colours for pictures: background black, LV cavity red, LV myocardium green, RV cavity blue.
PALETTE = torch.tensor([[0, 0, 0], [1.0, 0.2, 0.2], [0.2, 0.9, 0.2], [0.3, 0.5, 1.0]])


def check_tensorboard_available() -> None:
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        raise ConfigError("log.tensorboard is true but the tensorboard package is not installed; "
                          "pip install tensorboard, or --set log.tensorboard=false") from None


def colour_labels(labels: torch.Tensor) -> torch.Tensor:
    """Label codes (N, H, W) -> RGB pictures (N, 3, H, W) in [0, 1]."""
    palette = PALETTE.to(labels.device)
    return palette[labels.long().clamp(0, len(palette) - 1)].permute(0, 3, 1, 2)


class CsvLog:
    """Append-only CSV whose columns are fixed by its first row; rows after ``keep_until`` are dropped on open."""

    def __init__(self, path: Path, keep_until: Optional[int] = None) -> None:
        self.path = path
        self.columns: Optional[list] = None
        if path.exists():
            with open(path, newline="") as handle:
                reader = csv.DictReader(handle)
                rows, header = list(reader), reader.fieldnames
            if header:
                self.columns = list(header)
                if keep_until is not None:
                    self._rewrite([row for row in rows if int(row["step"]) <= keep_until])

    def _rewrite(self, rows: list) -> None:
        with open(self.path, "w", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns)
            writer.writeheader()
            writer.writerows(rows)

    def write(self, row: Mapping[str, object]) -> None:
        new = self.columns is None
        if new:
            self.columns = list(row)
        with open(self.path, "a", newline="") as handle:
            writer = csv.DictWriter(handle, self.columns, extrasaction="ignore")
            if new:
                writer.writeheader()
            writer.writerow({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})


class Logbook:
    def __init__(self, run_dir: Path, tensorboard: bool, resumed_step: Optional[int] = None) -> None:
        self.losses_csv = CsvLog(run_dir / "losses.csv", resumed_step)
        self.validation_csv = CsvLog(run_dir / "validation.csv", resumed_step)
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            purge = None if resumed_step is None else resumed_step + 1
            self.writer = SummaryWriter(str(run_dir / "tensorboard"), purge_step=purge)

    def losses(self, step: int, epoch: int, values: Mapping[str, float], samples_per_s: float,
               learning_rate: Optional[float] = None) -> None:
        """One row; ``learning_rate`` is the rate of ``step`` (a column only in files that began with it)."""
        rate = {} if learning_rate is None else {"learning_rate": learning_rate}
        self.losses_csv.write({"step": step, "epoch": epoch, **{PAPER_NAMES.get(k, k): v for k, v in values.items()},
                               "samples_per_s": samples_per_s, **rate})
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(PAPER_NAMES.get(name, name), value, step)
            self.writer.add_scalar("speed/samples_per_s", samples_per_s, step)
            if learning_rate is not None:
                self.writer.add_scalar("optimiser/learning_rate", learning_rate, step)

    def validation(self, step: int, epoch: int, dice: Mapping[str, float], best: bool) -> None:
        self.validation_csv.write({"step": step, "epoch": epoch, **dice, "best": int(best)})
        if self.writer is not None:
            for name, value in dice.items():
                stage, structure = name.split("_", 1)
                self.writer.add_scalar(f"dice_{vocabulary.stage(stage).title}/{structure}", value, step)

    def pictures(self, step: int, panels: Dict[str, torch.Tensor]) -> None:
        """``panels``: name -> images (N, 1, H, W) in [0, 1] or label maps (N, H, W) of integer codes."""
        if self.writer is None:
            return
        for name, value in panels.items():
            value = value.detach().float().cpu()
            pictures = value.clamp(0, 1) if value.ndim == 4 else colour_labels(value)
            self.writer.add_images(f"examples/{name}", pictures, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
