"""Per-epoch progress bar with the running mean of each loss (tqdm when installed, else a text bar).

Only the main process shows one (``enabled=False`` elsewhere makes every call a no-op).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import TextIO

__all__ = ["EpochProgress", "header"]

LOSS_NAMES = ("box_loss", "seg_loss", "cls_loss", "dfl_loss")


def header(loss_names: Sequence[str] = LOSS_NAMES) -> str:
    return ("%11s" * (2 + len(loss_names)) + "%11s%11s") % ("Epoch", "GPU_mem", *loss_names, "Instances", "Size")


class EpochProgress:
    """``update(mean_losses, instances, size)`` after each batch; ``close()`` at the end of the epoch."""

    def __init__(
        self,
        total: int,
        epoch: int,
        epochs: int,
        *,
        enabled: bool = True,
        memory: str = "0G",
        stream: TextIO | None = None,
        use_tqdm: bool | None = None,
        min_interval: float = 2.0,
    ):
        self.total, self.epoch, self.epochs = int(total), int(epoch), int(epochs)
        self.enabled = bool(enabled)
        self.memory = memory
        self.stream = stream or sys.stderr
        self.n = 0
        self.desc = ""
        self.min_interval = float(min_interval)
        self._last_print = 0.0
        self._start = time.time()
        self._bar = None
        if not self.enabled:
            return
        if use_tqdm is None or use_tqdm:
            try:
                from tqdm import tqdm
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(
                    total=self.total,
                    file=self.stream,
                    bar_format="{l_bar}{bar:10}{r_bar}",
                    dynamic_ncols=False,
                    leave=True,
                )

    def describe(self, losses: Sequence[float], instances: int, size: int) -> str:
        return ("%11s%11s" + "%11.4g" * len(losses) + "%11d%11d") % (
            f"{self.epoch + 1}/{self.epochs}",
            self.memory,
            *[float(v) for v in losses],
            int(instances),
            int(size),
        )

    def update(self, losses: Sequence[float], instances: int, size: int, memory: str | None = None) -> None:
        if not self.enabled:
            return
        if memory is not None:
            self.memory = memory
        self.n += 1
        self.desc = self.describe(losses, instances, size)
        if self._bar is not None:
            self._bar.set_description_str(self.desc, refresh=False)
            self._bar.update(1)
            return
        now = time.time()
        if self.n == self.total or now - self._last_print >= self.min_interval:
            self._last_print = now
            self._print_text(final=False)

    def _print_text(self, final: bool) -> None:
        frac = self.n / max(self.total, 1)
        filled = int(round(frac * 10))
        elapsed = time.time() - self._start
        rate = self.n / elapsed if elapsed > 0 else 0.0
        line = (
            f"{self.desc} {frac * 100:3.0f}%|{'#' * filled}{' ' * (10 - filled)}| {self.n}/{self.total} "
            f"[{elapsed:.0f}s, {rate:.2f}it/s]"
        )
        tty = getattr(self.stream, "isatty", lambda: False)()
        if tty:
            self.stream.write("\r" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if not self.enabled:
            return
        if self._bar is not None:
            self._bar.close()
            self._bar = None
        elif self.n:
            tty = getattr(self.stream, "isatty", lambda: False)()
            if tty:
                self._print_text(final=True)
        self.enabled = False
