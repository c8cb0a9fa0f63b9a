"""What makes a run folder one run's: a lock held while it trains, and a record of what it was trained on.

- ``run.lock`` (JSON: pid, host, start time) is created exclusively when a run starts and removed when it ends;
  a thread refreshes its modification time every `HEARTBEAT` seconds. Another run refuses the folder while the
  lock is live; a lock whose process is dead on this host, or whose heartbeat is older than `STALE_AFTER`
  (a crashed node of a cluster), is taken over, said in one line.
- ``run.json`` records the kind of run and what it trains on: each dataset's resolved folder, format, frame count
  and first / last frame, and the sha256 of the pretrained file (probe / finetune). A resume checks these, the
  kind and every configuration key outside `RESUMABLE` before anything in the folder changes.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import socket
import threading
import time
from pathlib import Path
from typing import Any

import yaml

from seal.core.atomic import write_text_atomic
from seal.core.errors import ConfigError, DataError

LOCK = "run.lock"
RECORD = "run.json"
HEARTBEAT = 30.0        # seconds between refreshes of a live lock's modification time
STALE_AFTER = 600.0     # a lock not refreshed for this long belongs to a run that is gone (any host)

# keys a resume may change: none of them changes what a step computes (data, model, loss, optimiser, schedule
# within the epochs trained so far); each changes only how long the run goes on, how it is logged, checkpointed,
# stopped or loaded
RESUMABLE = {
    "train.max_steps": "train on (or stop earlier): the schedule is set by the epochs, not by max_steps",
    "optim.epochs": "extend the run: the cosine schedule is stretched to the new total from the resumed step on",
    "train.num_workers": "loader processes only: every sample draws from its own seeded generator",
    "train.log_every": "logging only",
    "train.checkpoint_every": "checkpointing only",
    "train.keep_checkpoints": "checkpointing only",
    "train.stop_signals": "how the run is stopped",
    "train.resume": "the resume itself",
    "train.run_dir": "the folder is the one resumed",
    "cache.root": "where stage caches live: they are keyed by method and parameters",
    # compared by what they point at (run.json), not as written: a relative path from another folder differs
    "data.path": "checked by the dataset's identity instead",
    "data.mix": "checked by the datasets' identity instead",
    "model.pretrained": "checked by the file's sha256 instead",
    "teacher.weights": "checked by the file's sha256 instead (a moved file may be named anew)",
}


# -- the lock ------------------------------------------------------------------------------------------------
def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class RunLock:
    """The exclusive lock of a run folder (see the module docstring)."""

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._mine: str | None = None

    def _holder(self) -> dict[str, Any] | None:
        try:
            text = self.path.read_text()
            age = time.time() - self.path.stat().st_mtime
        except FileNotFoundError:
            return None
        try:
            holder = json.loads(text)
        except ValueError:
            holder = {}
        holder = holder if isinstance(holder, dict) else {}
        holder["age"] = age
        return holder

    @staticmethod
    def _stale(holder: dict[str, Any]) -> str | None:
        """Why the lock no longer belongs to a live run, or None when it does."""
        pid, host = holder.get("pid"), holder.get("host")
        if host == socket.gethostname() and isinstance(pid, int) and not _alive(pid):
            return f"process {pid} on {host} is no longer running"
        if holder["age"] > STALE_AFTER:
            return f"not refreshed for {holder['age'] / 60:.0f} min"
        if "pid" not in holder:
            return "unreadable" if holder["age"] > HEARTBEAT else None
        return None

    def acquire(self) -> None:
        me = json.dumps({"pid": os.getpid(), "host": socket.gethostname(),
                         "started": time.strftime("%Y-%m-%d %H:%M:%S")})
        for _ in range(3):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            except FileExistsError:
                holder = self._holder()
                if holder is None:
                    continue  # released in between: try again
                why = self._stale(holder)
                if why is None:
                    raise DataError(self.path.parent, f"another seal run (pid {holder.get('pid')} on "
                                    f"{holder.get('host')}, started {holder.get('started')}) is writing to this "
                                    "folder", "wait for it to end or choose another train.run_dir; its lock "
                                    f"{LOCK} is taken over once that process is gone") from None
                print(f"seal: taking over {self.path} of pid {holder.get('pid')} on {holder.get('host')} "
                      f"({why})")
                self.path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w") as handle:
                handle.write(me + "\n")
            self._mine = me
            self._thread = threading.Thread(target=self._beat, name="seal-run-lock", daemon=True)
            self._thread.start()
            return
        raise DataError(self.path, "could not be taken (other runs keep starting in this folder)",
                        "choose another train.run_dir")

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT):
            with contextlib.suppress(OSError):
                os.utime(self.path)

    def release(self) -> None:
        if self._mine is None:
            return
        self._stop.set()
        with contextlib.suppress(OSError):
            if self.path.read_text().strip() == self._mine:
                self.path.unlink()
        self._mine = None


# -- identity ----------------------------------------------------------------------------------------------
def dataset_identity(dataset) -> dict[str, Any]:
    """A dataset as a run records it: resolved folder, format, frame count, first and last frame."""
    seqs = [s for s in dataset.sequences if len(s)]
    first = f"{seqs[0].name}/{seqs[0].frame_names[0]}" if seqs else None
    last = f"{seqs[-1].name}/{seqs[-1].frame_names[-1]}" if seqs else None
    return {"root": str(Path(dataset.root).resolve()), "format": dataset.kind, "frames": len(dataset),
            "first": first, "last": last}


def file_sha256(path: str | Path | None) -> str | None:
    if not path or not Path(path).is_file():
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def pretrained_identity(path: str | None) -> dict[str, Any] | None:
    """The pretrained file a downstream run starts from: resolved path and sha256 (None: random init); for an export
    folder (`seal export`), the sha256 of its ``model.safetensors``."""
    if not path:
        return None
    from seal.models.hub import WEIGHTS

    weights = Path(path) / WEIGHTS if Path(path).is_dir() else path
    return {"path": str(Path(path).resolve()), "sha256": file_sha256(weights)}


def read_record(run_dir: Path) -> dict[str, Any]:
    """The run's ``run.json`` ({} for a run from before it was written)."""
    try:
        record = json.loads((Path(run_dir) / RECORD).read_text())
    except (OSError, ValueError):
        return {}
    return record if isinstance(record, dict) else {}


def run_kind(run_dir: Path) -> str | None:
    """pretrain | probe | finetune: from run.json, else from the README heading seal writes."""
    kind = read_record(run_dir).get("kind")
    if kind:
        return kind
    with contextlib.suppress(OSError, IndexError):
        words = (Path(run_dir) / "README.md").read_text().splitlines()[0].split()
        if words[:2] == ["#", "seal"] and words[3:4] == ["run"]:
            return words[2]
    return None


def write_record(run_dir: Path, kind: str, identity: dict[str, Any]) -> None:
    write_text_atomic(Path(run_dir) / RECORD, json.dumps({"kind": kind, **identity}, indent=2) + "\n")


# -- resume checks -----------------------------------------------------------------------------------------
def _flat(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        out: dict[str, Any] = {}
        for key, value in tree.items():
            out.update(_flat(value, f"{prefix}{key}."))
        return out
    return {prefix[:-1]: tree}


def config_changes(old_yaml: str, new_yaml: str) -> dict[str, tuple[Any, Any]]:
    """Keys whose value differs (keys only one side knows, from another seal version, are left out)."""
    old, new = _flat(yaml.safe_load(old_yaml) or {}), _flat(yaml.safe_load(new_yaml) or {})
    return {k: (old[k], new[k]) for k in old.keys() & new.keys() if old[k] != new[k]}


def check_resume(run_dir: Path, kind: str, config_yaml: str, identity: dict[str, Any]) -> dict[str, tuple]:
    """Refuse, in one line, a resume that would continue something else; the allowed changes otherwise."""
    found = run_kind(run_dir)
    if found and found != kind:
        raise ConfigError(f"--resume {run_dir}: a {found} run, not a {kind} run: continue it with "
                          f"`seal {found} --resume {run_dir}`")
    try:
        old = (run_dir / "config.yaml").read_text()
    except OSError:
        raise DataError(run_dir / "config.yaml", "not found: not a seal run folder") from None
    changes = config_changes(old, config_yaml)
    refused = sorted(k for k in changes if k not in RESUMABLE)
    if refused:
        shown = ", ".join(f"{k} ({changes[k][0]!r} -> {changes[k][1]!r})" for k in refused)
        raise ConfigError(f"--resume {run_dir}: cannot change {shown} on resume (only "
                          f"{', '.join(k for k in RESUMABLE if not k.startswith(('data.', 'model.')))} may): drop "
                          "them, or start a new run with another train.run_dir")
    record = read_record(run_dir)
    for key, now in identity.items():
        if key not in record or _same(record[key], now):
            continue  # a run from before run.json (or before the key was recorded) has nothing to compare
        then = record[key]
        what = {"data": "dataset", "pretrained": "pretrained file", "teacher": "teacher weights file"}.get(key, key)
        raise ConfigError(f"--resume {run_dir}: the run was trained on {_describe(then)}, this {what} is "
                          f"{_describe(now)}: resume with the original one (or start a new run)")
    return {k: v for k, v in changes.items() if k not in ("train.resume", "train.run_dir")}


def _same(then: Any, now: Any) -> bool:
    """Equal identities; a file is the same file when its content is (a moved copy keeps its sha256)."""
    if isinstance(then, dict) and isinstance(now, dict) and "sha256" in then and "sha256" in now:
        return then["sha256"] == now["sha256"]
    return then == now


def _describe(value: Any) -> str:
    if isinstance(value, list):
        return " + ".join(_describe(v) for v in value)
    if isinstance(value, dict) and "root" in value:
        return f"{value['root']} ({value['format']}, {value['frames']} frames, {value['first']}..{value['last']})"
    if isinstance(value, dict) and "sha256" in value:
        return f"{value['path']} (sha256 {str(value['sha256'])[:12]})"
    return "none (random initialisation)" if value is None else str(value)


def same_data(run_dir: Path, roots: list[str]) -> bool:
    """For ``--resume auto``: whether a run was trained on these dataset folders (unknown: assumed so)."""
    data = read_record(run_dir).get("data")
    if not isinstance(data, list):
        return True
    return [d.get("root") for d in data] == [str(Path(r).resolve()) for r in roots]
