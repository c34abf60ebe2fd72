# Copyright (c) rsitr_mm contributors. All rights reserved.
"""Progress lines of an evaluation pass: items done, rate, ETA.

A CPU test pass over RSICD's 1,093 images takes minutes with nothing to
show (mmengine's logger prints evaluation iterations only every
``interval`` batches, and an RSICD test loader has fewer batches than the
default interval). :class:`EvalProgress` logs one line every
``interval_s`` seconds of wall time (30 by default: a few lines on a CPU,
none on a GPU pass that ends sooner), then one closing line with the total
time and rate.
"""
import time
from typing import Callable, Optional

from mmengine.logging import print_log


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f'{seconds}s'
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f'{minutes}m{seconds:02d}s'
    hours, minutes = divmod(minutes, 60)
    return f'{hours}h{minutes:02d}m'


class EvalProgress:
    """Time-based progress of an encoding pass.

    Args:
        stage (str): ``'val'`` or ``'test'``, the line's prefix.
        total (int): items (images) this process encodes.
        interval_s (float): seconds between lines. Defaults to 30.
        log (Callable[[str], None], optional): where lines go; defaults to
            mmengine's current logger.
        clock (Callable[[], float]): time source (seconds).
    """

    def __init__(self,
                 stage: str,
                 total: int,
                 interval_s: float = 30.0,
                 log: Optional[Callable[[str], None]] = None,
                 clock: Callable[[], float] = time.perf_counter) -> None:
        self.stage = stage
        self.total = max(0, int(total))
        self.interval_s = interval_s
        self.log = log or (lambda msg: print_log(msg, logger='current'))
        self.clock = clock
        self.done = 0
        self.start = clock()
        self.last = self.start

    def update(self, items: int) -> None:
        """Count ``items`` more; log when ``interval_s`` has passed."""
        self.done += items
        now = self.clock()
        if now - self.last < self.interval_s or self.done >= self.total:
            return
        self.last = now
        rate = self.done / max(now - self.start, 1e-9)
        left = (self.total - self.done) / rate if rate > 0 else 0.0
        self.log(f'{self.stage}: {self.done}/{self.total} images encoded, '
                 f'{rate:.1f} images/s, ETA {_duration(left)}')

    def finish(self) -> None:
        """Log the closing line."""
        spent = self.clock() - self.start
        rate = self.done / max(spent, 1e-9)
        self.log(f'{self.stage}: {self.done} images encoded in '
                 f'{_duration(spent)} ({rate:.1f} images/s)')
