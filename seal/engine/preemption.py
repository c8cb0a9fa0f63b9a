"""Graceful preemption: schedulers (SLURM, Kubernetes, ...) send SIGTERM or SIGUSR1 before they kill a job.

`StopRequest` turns those signals into a flag; the trainer checks it after every optimiser step, writes a
checkpoint, and the command exits with `Preempted.exit_code` (75), so a requeued job continues with
``--resume auto``. Under torchrun every rank agrees on the step (the flags are max-reduced). A second signal
while the first is pending (a step that takes too long) kills the process at once (status 143 for SIGTERM).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from types import FrameType

import torch
import torch.distributed as tdist

from seal.core.errors import ConfigError

DUPLICATE_WITHIN = 2.0  # seconds: a signal this soon after the first is the same request delivered twice


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
        self._first_at: float | None = None

    def _handle(self, number: int, frame: FrameType | None) -> None:
        """The first signal: stop after this step. A second one (later than `DUPLICATE_WITHIN` seconds: torchrun
        and a scheduler signalling the process group both deliver the first) restores the default action and
        re-raises, so the process dies of it at once (status 128 + N: 143 for SIGTERM), without a checkpoint.
        Nothing is left half-written then: every artefact is written to a temporary file and renamed
        (`seal.core.atomic`); the next run in the folder removes the temporaries and takes over the lock."""
        name = signal.Signals(number).name
        now = time.monotonic()
        # os.write, not print: a handler may run while the main thread is inside a write to stderr
        if self._first_at is not None and now - self._first_at > DUPLICATE_WITHIN:
            os.write(2, f"\nseal: second {name}: stopping at once without a checkpoint (the last one is "
                        "intact)\n".encode())
            for other in self.signals:
                signal.signal(other, signal.SIG_DFL)
            os.kill(os.getpid(), number)
            return
        if self._first_at is None:
            self._first_at = now
            self.signal_name = self.signal_name or name
            os.write(2, f"\nseal: {name}: stopping after this optimiser step with a checkpoint; send it again to "
                        "stop at once without one\n".encode())

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
