"""Atomic file writes: a reader never sees a half-written artefact, even if the writer dies mid-way."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO


@contextlib.contextmanager
def atomic_path(target: str | Path) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp" + target.suffix, dir=target.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "wb") -> Iterator[IO]:
    """Open a temporary file for writing that atomically becomes ``target`` when closed without error."""
    with atomic_path(target) as tmp, open(tmp, mode) as handle:
        yield handle


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_open(target, "wb") as handle:
        handle.write(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_open(target, "w") as handle:
        handle.write(text)
