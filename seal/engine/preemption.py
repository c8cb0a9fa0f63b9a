"""Graceful preemption: schedulers (SLURM, Kubernetes, ...) send SIGTERM or SIGUSR1 before they kill a job.

`StopRequest` turns those signals into a flag; the trainer checks it after every optimiser step, writes a
checkpoint, and the command exits with `Preempted.exit_code` (75), so a requeued job continues with
``--resume auto``. Under torchrun every rank agrees on the step (the flags are max-reduced).
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

import torch
import torch.distributed as tdist

from seal.core.errors import ConfigError


class StopRequest:
    """While active (a context manager), the listed signals set ``signal_name`` instead of killing the process."""

    def __init__(self, signals: list[str]) -> None:
        self.signals = []
        for name in signals:
            number = getattr(signal, name, None)
            if not isinstance(number, signal.Signals):
                raise ConfigError(f"train.stop_signals: {name!r} is not a signal of this platform (e.g. SIGTERM)")
            self.signals.append(number)
        self.signal_name: str | None = None
        self._previous: dict[signal.Signals, object] = {}

    def _handle(self, number: int, frame: FrameType | None) -> None:
        self.signal_name = signal.Signals(number).name

    def __enter__(self) -> StopRequest:
        if threading.current_thread() is threading.main_thread():  # handlers can only be set there
            for number in self.signals:
                self._previous[number] = signal.signal(number, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for number, previous in self._previous.items():
            signal.signal(number, previous)  # type: ignore[arg-type]
        self._previous.clear()

    def agreed(self, device: torch.device, distributed: bool) -> bool:
        """Whether any process was asked to stop (one tiny all-reduce per optimiser step under DDP)."""
        if not distributed:
            return self.signal_name is not None
        flag = torch.tensor([1.0 if self.signal_name else 0.0], device=device)
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        if flag.item() > 0 and self.signal_name is None:
            self.signal_name = "a signal to another process"
        return bool(flag.item() > 0)
