"""The one exception family users see: every message names the file or option at fault and what to do."""

from __future__ import annotations

from pathlib import Path


class SealError(Exception):
    """Base class of every error seal raises on purpose (bad input, bad option, missing file)."""


class ConfigError(SealError):
    """A configuration key or value is wrong."""


class DataError(SealError):
    """A file on disk cannot be read as what it should be."""

    def __init__(self, path: str | Path, problem: str, hint: str | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        msg = f"{self.path}: {problem}"
        if hint:
            msg += f" ({hint})"
        super().__init__(msg)


class WriteError(DataError):
    """An output cannot be written (disk full, folder not writable); nothing half-written is left behind."""


class Preempted(SealError):
    """A run stopped on request (SIGTERM / SIGUSR1) after writing a checkpoint; it continues with --resume."""

    exit_code = 75  # EX_TEMPFAIL: "try again later" - what a requeued job expects


class Diverged(SealError):
    """Training produced a non-finite loss, gradient, weight or BatchNorm statistic: the run stopped at that step,
    its last good checkpoint kept as it was and nothing exported; the message names the step and the culprit."""

    exit_code = 3  # distinct from 2 (bad input): the input was read, the optimisation blew up
