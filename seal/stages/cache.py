"""Where a stage's artefacts live: one folder per (stage, method, parameters), so stale output is never reused."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path
from typing import Any

from seal.core.atomic import write_text_atomic
from seal.core.errors import ConfigError, WriteError


def params_key(method: str, params: dict[str, Any]) -> str:
    """``method-<hash>``: a folder name that changes whenever any parameter changes."""
    blob = json.dumps({"method": method, "params": params}, sort_keys=True, default=str)
    return f"{method}-{hashlib.sha1(blob.encode()).hexdigest()[:10]}"


def cache_root_for(dataset_root: Path, override: str | Path | None = None) -> Path:
    """The cache folder of a dataset: ``override``, else ``DATASET/seal_cache`` when writable, else a folder
    under ``~/.cache/seal`` named after the dataset (datasets are often on read-only storage)."""
    if override:
        return Path(override).expanduser()
    beside = dataset_root / "seal_cache"
    if beside.is_dir() and _writable(beside) or _writable(dataset_root):
        return beside
    digest = hashlib.sha1(str(dataset_root.resolve()).encode()).hexdigest()[:8]
    base = Path(os.environ.get("SEAL_CACHE_HOME", Path.home() / ".cache" / "seal"))
    return base / f"{dataset_root.resolve().name}-{digest}"


def _writable(folder: Path) -> bool:
    """Writable for us *and* not marked read-only: root passes os.access everywhere, but a folder with no write
    bit (shared or archived datasets) should not be written into even by root."""
    try:
        mode = folder.stat().st_mode
    except OSError:
        return False
    return os.access(folder, os.W_OK) and bool(mode & (stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


class StageCache:
    """The output folder of one stage run; ``params.json`` records what produced it."""

    def __init__(self, root: Path, stage: str, method: str, params: dict[str, Any]) -> None:
        self.stage, self.method, self.params = stage, method, params
        self.folder = root / stage / params_key(method, params)

    def prepare(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise WriteError(self.folder, f"the cache folder cannot be created ({err.strerror})",
                             "pass --cache DIR (cache.root=DIR) on a writable disk, or set SEAL_CACHE_HOME") from None
        record = self.folder / "params.json"
        text = json.dumps({"stage": self.stage, "method": self.method, "params": self.params}, indent=2,
                          sort_keys=True, default=str)
        if not record.exists():
            write_text_atomic(record, text + "\n")

    def path(self, *parts: str) -> Path:
        return self.folder.joinpath(*parts)


def parse_shard(spec: str | None) -> tuple[int, int]:
    """``i/n`` -> (i, n) with 0 <= i < n; by default the torchrun rank/world size, else 0/1."""
    if spec is None:
        return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))
    try:
        index, count = (int(v) for v in spec.split("/"))
    except ValueError:
        raise ConfigError(f"--shard {spec!r} is not i/n (e.g. --shard 0/4)") from None
    if not (count >= 1 and 0 <= index < count):
        raise ConfigError(f"--shard {spec!r}: need 0 <= i < n")
    return index, count
