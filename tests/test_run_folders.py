"""A run owns its folder (issue 20, case 2; case 7's second signal): a lock that a live run holds and a crashed
one does not leave stuck, default names that never collide, a fresh run that refuses another run's files.
Each refusal is one line, exit status 2, and leaves every file as it was."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from seal.cli.main import main
from seal.engine import runrecord
from seal.engine.rundir import default_run_dir, latest_run

FAST = ["--config", "tiny", "augment.crop_size=[56,104]", "augment.min_pairings_per_image=32",
        "train.batch_size=2", "train.num_workers=0", "train.log_every=1", "train.max_steps=1"]
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("folders") / "synth", sequences=2, frames=4, seed=7, cameras=1,
                            image_width=320, azimuth_steps=512, progress=False)


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("finished") / "run"
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={run}"]) == 0
    return run


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("seal: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _hold(folder: Path, pid: int, age: float = 0.0) -> Path:
    """A lock as a run with ``pid`` on this host writes it (``age`` seconds since its last heartbeat)."""
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / runrecord.LOCK
    lock.write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "started": "2024-01-01 00:00:00"}))
    if age:
        os.utime(lock, (time.time() - age, time.time() - age))
    return lock


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_a_live_lock_refuses_a_second_writer(data, tmp_path, capsys):
    run = tmp_path / "run"
    lock = _hold(run, os.getpid())  # a live process: this one, standing in for a run that is still training
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={run}"]) == 2
    line = _one_error(capsys)
    assert str(run) in line and f"another seal run (pid {os.getpid()}" in line and "train.run_dir" in line
    assert sorted(p.name for p in run.iterdir()) == [runrecord.LOCK] and lock.exists()


def test_a_resume_of_a_run_still_training_is_refused(finished, tmp_path, capsys):
    lock = _hold(finished, os.getpid())
    try:
        before = _snapshot(finished)
        assert main(["pretrain", "--resume", str(finished), "train.max_steps=2"]) == 2
        assert "another seal run" in _one_error(capsys)
        assert _snapshot(finished) == before
    finally:
        lock.unlink()


@pytest.mark.parametrize("how", ["dead pid", "old heartbeat"])
def test_a_stale_lock_is_taken_over_with_a_message(how, data, tmp_path, capsys):
    run = tmp_path / "run"
    if how == "dead pid":
        _hold(run, _dead_pid())
    else:  # a live pid (pid reuse, or a node that died with the lock on a shared disk) but no heartbeat
        _hold(run, os.getpid(), age=runrecord.STALE_AFTER + 60)
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={run}"]) == 0
    out = capsys.readouterr().out
    assert f"taking over {run / runrecord.LOCK}" in out
    assert ("is no longer running" if how == "dead pid" else "not refreshed") in out
    assert (run / "backbone.pt").is_file() and not (run / runrecord.LOCK).exists()  # released at the end
    assert json.loads((run / runrecord.RECORD).read_text())["kind"] == "pretrain"


def test_default_names_never_collide(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(time, "strftime", lambda fmt, *a: "20240101-120000")  # two runs in the same second
    names = [default_run_dir("pretrain", claim=True) for _ in range(11)]
    assert len(set(names)) == 11 and all(p.is_dir() for p in names)
    assert names[1].name == "pretrain-20240101-120000-2"
    for p in names:
        (p / "checkpoints").mkdir()
        (p / "checkpoints" / "last.pt").write_bytes(b"x")
    assert latest_run(None, "pretrain") == names[-1]  # -11 sorts after -2: the newest is the last started


def test_a_fresh_run_refuses_a_finished_runs_folder(data, finished, capsys):
    before = _snapshot(finished)
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={finished}", "optim.lr=0.5"]) == 2
    line = _one_error(capsys)
    assert str(finished) in line and "config.yaml" in line and f"--resume {finished}" in line
    assert _snapshot(finished) == before


def test_run_dir_dot_leaves_the_users_files_alone(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "README.md").write_text("my project\n")
    (tmp_path / "config.yaml").write_text("mine: 1\n")
    assert main(["pretrain", str(data), *FAST, "train.run_dir=."]) == 2
    assert "README.md" in _one_error(capsys)
    assert (tmp_path / "README.md").read_text() == "my project\n"
    assert (tmp_path / "config.yaml").read_text() == "mine: 1\n" and not (tmp_path / runrecord.LOCK).exists()


SIGNALS = """
import os, signal, time
from seal.engine import preemption
preemption.DUPLICATE_WITHIN = 60.0
with preemption.StopRequest(["SIGTERM"]) as stop:  # the same request delivered twice (torchrun + the group)
    os.kill(os.getpid(), signal.SIGTERM)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.1)
print("still running", stop.signal_name, flush=True)
preemption.DUPLICATE_WITHIN = 0.0
with preemption.StopRequest(["SIGTERM"]) as stop:  # a second request while the first is pending
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(0.1)
    os.kill(os.getpid(), signal.SIGTERM)
    time.sleep(5)
    print("not killed", flush=True)
"""


def test_a_second_stop_signal_kills_at_once():
    """Case 7: the first SIGTERM asks for a checkpoint after the step; a second one (not the same one delivered
    twice within DUPLICATE_WITHIN) ends the process at once, with the conventional status (143 = killed by it)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", SIGNALS], env=env, capture_output=True, text=True, timeout=60)
    assert "still running SIGTERM" in proc.stdout and "not killed" not in proc.stdout
    assert proc.returncode == -15, proc.stderr
    assert proc.stderr.count("stopping after this optimiser step") == 2
    assert "second SIGTERM: stopping at once" in proc.stderr
