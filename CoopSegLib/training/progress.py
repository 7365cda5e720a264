"""Progress of a run on stderr: a tqdm bar (ETA, samples/s) in a terminal, plain periodic lines in logs and on clusters.

A carriage-return bar written to a file or a scheduler's log becomes one enormous line, so without a terminal the
same figures come as one line every ``every`` steps.
"""

from __future__ import annotations

import sys
import time
from typing import Optional, TextIO


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m{seconds:02d}s" if hours else f"{minutes}m{seconds:02d}s"


class Progress:
    def __init__(self, total: int, initial: int, every: int, enabled: bool = True,
                 stream: Optional[TextIO] = None) -> None:
        self.total, self.step, self.every, self.enabled = total, initial, max(1, every), enabled
        self.stream = stream if stream is not None else sys.stderr
        self.started, self.initial = time.perf_counter(), initial
        self.bar = None
        if enabled and self.stream.isatty():
            from tqdm import tqdm

            self.bar = tqdm(total=total, initial=initial, unit="step", file=self.stream, dynamic_ncols=True,
                            smoothing=0.1)

    def update(self, step: int, loss: float, samples_per_s: float) -> None:
        if not self.enabled:
            return
        advanced, self.step = step - self.step, step
        if self.bar is not None:
            self.bar.update(advanced)
            self.bar.set_postfix(loss=f"{loss:.4f}", samples_per_s=f"{samples_per_s:.1f}", refresh=False)
        elif step % self.every == 0 or step == self.total:
            done = step - self.initial
            elapsed = time.perf_counter() - self.started
            eta = elapsed / done * (self.total - step) if done else float("nan")
            print(f"step {step}/{self.total} ({100 * step / self.total:.0f}%)  loss {loss:.4f}  "
                  f"{samples_per_s:.1f} samples/s  elapsed {format_seconds(elapsed)}  ETA "
                  f"{format_seconds(eta) if eta == eta else '?'}", file=self.stream, flush=True)

    def write(self, message: str) -> None:
        """A line that does not break the bar."""
        if not self.enabled:
            return
        if self.bar is not None:
            self.bar.write(message, file=self.stream)
        else:
            print(message, file=self.stream, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
