"""Fault injection: preemption, broken and missing checkpoints, full disks, errors inside loader workers, loss
terms switched off under DDP. Each case asserts the message, the exit status and that nothing corrupt remains."""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from seal.cli.main import main
from seal.core.schemas import PretrainSchema
from seal.core.settings import load_config
from seal.engine.pretrain import pretrain
from seal.models.export import load_backbone

TINY = Path(__file__).resolve().parents[1] / "seal" / "configs" / "pretrain_tiny.yaml"
FAST = ["augment.crop_size=[56,104]", "augment.min_pairings_per_image=32", "train.batch_size=2",
        "train.num_workers=0", "train.log_every=1", "optim.epochs=3", "train.deterministic=true"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    from seal.synth import generate_dataset

    return generate_dataset(tmp_path_factory.mktemp("faults") / "synth", sequences=1, frames=5, seed=3, cameras=1,
                            image_width=224, azimuth_steps=720, progress=False)


@pytest.fixture(scope="module")
def whole(data, tmp_path_factory) -> Path:
    """An uninterrupted deterministic run (3 epochs x 2 steps): what every interrupted run must end with."""
    return pretrain(_cfg(data, tmp_path_factory.mktemp("whole") / "run"), progress=False)


def _cfg(data: Path, run: Path, *extra: str) -> PretrainSchema:
    return load_config(PretrainSchema, TINY, [f"data.path={data}", f"train.run_dir={run}", *FAST, *extra])


def _same_weights(a: Path, b: Path) -> bool:
    x, y = load_backbone(a / "backbone.pt")[0].state_dict(), load_backbone(b / "backbone.pt")[0].state_dict()
    return x.keys() == y.keys() and all(torch.equal(x[k], y[k]) for k in x)


def _error_lines(stderr: str) -> list[str]:
    """seal's own lines on stderr (progress bars and library warnings share it); never a traceback."""
    assert "Traceback" not in stderr, stderr[-2000:]
    return re.findall(r"seal: error: [^\r\n]*", stderr)


def _no_temporaries(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if ".tmp" in p.name]


def test_sigterm_checkpoints_the_step_and_resume_auto_finishes_identically(data, whole, tmp_path):
    command = [sys.executable, "-m", "seal", "pretrain", str(data), "--config", "tiny", *FAST]
    proc = subprocess.Popen(command, cwd=tmp_path, env=ENV, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not list(tmp_path.glob("runs/pretrain-*/metrics.csv")) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.05)  # the first optimiser step is logged: stop the run now
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 75, err[-2000:]
    assert "stopped by SIGTERM after optimiser step" in err and "--resume auto" in err
    (run,) = tmp_path.glob("runs/pretrain-*")
    assert (run / "checkpoints" / "last.pt").is_file() and not (run / "backbone.pt").exists()
    steps_done = int(err.split("after optimiser step ")[1].split(";")[0])
    assert 1 <= steps_done < 6
    again = subprocess.run([*command, "--resume", "auto"], cwd=tmp_path, env=ENV, capture_output=True, text=True,
                           timeout=300)
    assert again.returncode == 0, again.stderr[-2000:]
    assert f"continuing {Path('runs') / run.name}" in again.stdout
    assert _same_weights(whole, run) and _no_temporaries(run)


def test_resume_auto_without_an_earlier_run_starts_one(data, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["pretrain", str(data), "--config", "tiny", *FAST, "train.max_steps=1", "--resume", "auto"]) == 0
    assert "starting a new run" in capsys.readouterr().out
    assert len(list(tmp_path.glob("runs/pretrain-*/backbone.pt"))) == 1


def test_resume_skips_an_unreadable_last_pt_and_cleans_temporaries(data, whole, tmp_path, capsys):
    part = tmp_path / "part"
    pretrain(_cfg(data, part, "train.max_steps=3"), progress=False)
    last = part / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[:1000])                     # truncated by a crash of the file system
    stale = part / "checkpoints" / ".step-4.pt.x1y2.tmp.pt"          # a kill during a checkpoint write
    stale.write_bytes(b"half")
    assert main(["pretrain", "--resume", str(part), "train.max_steps=null"]) == 0
    out = capsys.readouterr().out
    assert "last.pt" in out and "resuming from step-3.pt instead" in out
    assert "removed 1 unfinished temporary file" in out and not stale.exists()
    assert _same_weights(whole, part)


def test_resume_refuses_what_it_cannot_do_exactly(data, whole, tmp_path, capsys):
    missing = whole / "checkpoints" / "step-99.pt"
    assert main(["pretrain", "--resume", str(missing)]) == 2
    assert f"--resume {missing}: no such run folder or checkpoint file" in capsys.readouterr().err
    assert main(["pretrain", "--resume", str(tmp_path / "runs" / "typo")]) == 2
    assert str(tmp_path / "runs" / "typo") in capsys.readouterr().err
    before = (whole / "backbone.pt").read_bytes()
    assert main(["pretrain", "--resume", str(whole)]) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert (whole / "backbone.pt").read_bytes() == before


@pytest.mark.parametrize("content, what", [(torch.zeros(3), "a bare tensor"), ([1, 2], "a list"),
                                           ({"weights": torch.zeros(1)}, "a dict with keys")])
def test_malformed_checkpoints_are_one_line_errors(content, what, data, whole, tmp_path, capsys):
    bad = tmp_path / "bad.pt"
    torch.save(content, bad)
    for argv in (["evaluate", str(bad), str(data)], ["probe", str(data), "--pretrained", str(bad)]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and what in err[0] and str(bad) in err[0], err
    run = tmp_path / "run"
    shutil.copytree(whole, run)
    torch.save(content, run / "checkpoints" / "bad.pt")
    assert main(["pretrain", "--resume", str(run / "checkpoints" / "bad.pt")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and what in err[0] and "training checkpoint" in err[0], err


def test_a_full_disk_keeps_the_previous_checkpoint(data, tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    pretrain(_cfg(data, run, "train.max_steps=2"), progress=False)
    good = (run / "checkpoints" / "last.pt").read_bytes()
    real_replace = os.replace

    def full(src, dst, *args, **kwargs):
        if str(dst).endswith(".pt"):
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_replace(src, dst, *args, **kwargs)

    monkeypatch.setattr("seal.core.atomic.os.replace", full)
    assert main(["pretrain", "--resume", str(run), "train.max_steps=3"]) == 2
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and "no space left on the device" in err[0] and str(run / "checkpoints") in err[0]
    assert "MiB needed" in err[0]
    assert (run / "checkpoints" / "last.pt").read_bytes() == good and _no_temporaries(run)


def test_an_unwritable_run_folder_is_one_line(data, tmp_path, monkeypatch, capsys):
    def denied(*args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied")

    monkeypatch.setattr("seal.core.atomic.tempfile.mkstemp", denied)
    assert main(["pretrain", str(data), "--config", "tiny", f"train.run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "is not writable" in err[0] and str(tmp_path / "run") in err[0]


def test_a_data_error_in_a_loader_worker_reads_as_without_workers(data, tmp_path, capsys):
    broken = tmp_path / "broken"
    shutil.copytree(data, broken)
    argv = ["pretrain", str(broken), "--config", "tiny", *FAST, "train.max_steps=1",
            f"train.run_dir={tmp_path / 'run'}"]
    assert main(argv) == 0                                   # caches computed while the data is intact
    image = sorted((broken / "sequences" / "00" / "image_2").glob("*.png"))[0]
    image.write_bytes(image.read_bytes()[:200])              # then one camera image is truncated
    lines = {}
    for workers in (0, 1):
        assert main([*argv, f"train.num_workers={workers}", "train.max_steps=null", "optim.epochs=1",
                     f"train.run_dir={tmp_path / f'run{workers}'}"]) == 2
        err = _error_lines(capsys.readouterr().err)
        assert len(err) == 1 and str(image) in err[0], err
        lines[workers] = err[0]
    assert lines[0] == lines[1]


@pytest.mark.parametrize("term", ["vfm", "tmp", "p2s"])
def test_any_loss_term_may_be_off_under_ddp(term, data, tmp_path):
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29530 + ["vfm", "tmp", "p2s"].index(term)), "-m", "seal", "pretrain", str(data), "--config",
               "tiny", *FAST, "train.batch_size=1", "train.max_steps=2", f"loss.{term}=0",
               f"train.run_dir={tmp_path / 'run'}"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "backbone.pt").is_file()


@pytest.mark.parametrize("objective", ["ppkt", "scalr"])
def test_each_objective_runs_under_ddp(objective, data, tmp_path):
    """Switched-off terms stay attached (H_i under ScaLR, the ScaLR head only when it exists): DDP sees every
    parameter used."""
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(29533 + ["ppkt", "scalr"].index(objective)), "-m", "seal", "pretrain", str(data), "--config",
               "tiny", "--objective", objective, *FAST, "train.batch_size=1", "train.max_steps=2",
               f"train.run_dir={tmp_path / 'run'}"]
    result = subprocess.run(command, capture_output=True, text=True, env=ENV, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "run" / "backbone.pt").is_file()


def test_truncated_cache_files_are_redone_and_training_runs(data, tmp_path, capsys):
    cache = tmp_path / "cache"
    stage = ["--config", "tiny", "--cache", str(cache), "--no-progress"]
    assert main(["superpixels", str(data), *stage]) == 0 and main(["superpoints", str(data), *stage]) == 0
    victims = [sorted(cache.rglob("*.png"))[1], sorted(cache.rglob("*.npz"))[0]]
    intact = [v.read_bytes() for v in victims]
    for victim, content in zip(victims, intact, strict=True):
        victim.write_bytes(content[: len(content) // 2])
    capsys.readouterr()
    assert main(["superpixels", str(data), *stage]) == 0
    assert "redone 1 cached file" in capsys.readouterr().out and victims[0].read_bytes() == intact[0]
    assert main(["pretrain", str(data), *stage[:2], *FAST, "train.max_steps=1", f"cache.root={cache}",
                 f"train.run_dir={tmp_path / 'run'}"]) == 0  # its superpoint stage redoes the other file
    assert victims[1].read_bytes() == intact[1] and (tmp_path / "run" / "backbone.pt").is_file()


def test_a_corrupt_cache_file_met_in_training_names_the_file_and_the_repair(data, tmp_path, capsys):
    cache = tmp_path / "cache"
    argv = ["pretrain", str(data), "--config", "tiny", *FAST, "train.max_steps=1", f"cache.root={cache}"]
    assert main([*argv, f"train.run_dir={tmp_path / 'a'}"]) == 0
    victim = sorted(cache.rglob("*.npz"))[0]
    content = bytearray(victim.read_bytes())
    content[40:240] = bytes(200)  # damage inside the archive: its directory at the end still reads
    victim.write_bytes(bytes(content))
    assert main([*argv, "optim.epochs=1", "train.max_steps=null", f"train.run_dir={tmp_path / 'b'}"]) == 2
    err = _error_lines(capsys.readouterr().err)
    assert len(err) == 1 and str(victim) in err[0] and "seal superpoints" in err[0], err


def test_an_empty_scan_is_skipped_with_a_count(data, tmp_path, capsys):
    holed = tmp_path / "holed"
    shutil.copytree(data, holed)
    seq = holed / "sequences" / "00"
    (seq / "velodyne" / "000002.bin").write_bytes(b"")           # a dropped scan: no points, no labels
    (seq / "labels" / "000002.label").write_bytes(b"")
    assert main(["superpixels", str(holed), "--config", "tiny", "--no-progress"]) == 0
    assert main(["superpoints", str(holed), "--config", "tiny", "--no-progress"]) == 0
    assert "skipped 2: frame pairs with an empty scan" in capsys.readouterr().out
    run = tmp_path / "run"
    assert main(["pretrain", str(holed), "--config", "tiny", *FAST, "train.batch_size=1", "train.max_steps=2",
                 f"train.run_dir={run}"]) == 0
    assert "skipped 2 frame pair(s) with an empty scan" in capsys.readouterr().out
    summary = (run / "summary.json").read_text()
    assert '"pairs": 2' in summary and '"pairs_skipped_empty_scan": 2' in summary
