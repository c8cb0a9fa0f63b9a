"""Atomic file writes: a reader never sees a half-written artefact, even if the writer dies mid-way.

A write that fails because the disk is full or the folder is not writable becomes one `WriteError` naming the
folder (and, when known, the bytes needed and free); the temporary file is removed and the previous version of
the target stays as it was.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from seal.core.errors import WriteError

TEMP_MARK = ".tmp"  # temporary files are named .NAME.XXXX.tmp<suffix> next to their target


def _write_error(err: OSError, folder: Path, needed: int | None) -> WriteError | None:
    """The user-facing error for a failed write, or None when ``err`` is not about space or permission."""
    if err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            free = None
        sizes = []
        if needed is not None:
            sizes.append(f"{needed / 2**20:,.1f} MiB needed")
        if free is not None:
            sizes.append(f"{free / 2**20:,.1f} MiB free")
        detail = f" ({', '.join(sizes)})" if sizes else ""
        return WriteError(folder, f"no space left on the device{detail}",
                          "free space or point the output elsewhere; the previous files are intact")
    if err.errno in (errno.EACCES, errno.EROFS, errno.EPERM):
        return WriteError(folder, "is not writable", "choose a folder you can write to")
    return None


def default_mode(directory: bool = False) -> int:
    """The permissions a plain ``open()`` / ``mkdir()`` would give under the current umask (mkstemp and mkdtemp
    create private 0600 / 0700 entries, wrong for files meant to be read by others)."""
    mask = os.umask(0)
    os.umask(mask)
    return (0o777 if directory else 0o666) & ~mask


@contextlib.contextmanager
def atomic_path(target: str | Path, size_hint: int | None = None) -> Iterator[Path]:
    """Yield a temporary path next to ``target``; it replaces ``target`` only if the block succeeds."""
    target = Path(target)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=TEMP_MARK + target.suffix, dir=target.parent)
    except OSError as err:
        raise (_write_error(err, target.parent, size_hint) or err) from None
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        if tmp_path.exists():
            tmp_path.chmod(default_mode())
        os.replace(tmp_path, target)
    except OSError as err:
        friendly = _write_error(err, target.parent, size_hint)
        if friendly is None:
            raise
        raise friendly from None
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_open(target: str | Path, mode: str = "wb", size_hint: int | None = None) -> Iterator[IO]:
    """Open a temporary file for writing that atomically becomes ``target`` when closed without error."""
    with atomic_path(target, size_hint) as tmp, open(tmp, mode) as handle:
        yield handle


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_open(target, "wb", len(data)) as handle:
        handle.write(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    with atomic_open(target, "w", len(text.encode())) as handle:
        handle.write(text)


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete temporary files a killed writer left in ``folder`` (not recursive); returns what was removed."""
    removed = []
    for path in Path(folder).glob(f".*{TEMP_MARK}*"):
        if path.is_file():
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed
