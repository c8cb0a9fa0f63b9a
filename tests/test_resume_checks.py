"""A resume continues the same run or refuses in one line (issue 20, cases 3 and 4): keys outside
`seal.engine.runrecord.RESUMABLE`, another kind of run, another dataset or a changed pretrained file are
refused before anything in the run folder changes; an allowed change rewrites config.yaml and says so."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from seal.cli.main import main
from seal.synth import generate_dataset

FAST = ["--config", "tiny", "augment.crop_size=[56,104]", "augment.min_pairings_per_image=32",
        "train.batch_size=2", "train.num_workers=0", "train.log_every=1", "train.max_steps=1"]
PROBE = ["--config", "tiny", "train.num_workers=0", "train.max_steps=1", "split.train_sequences=['00']",
         "split.val_sequences=['01']"]


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return generate_dataset(tmp_path_factory.mktemp("resume") / "D", sequences=2, frames=4, seed=7, cameras=1,
                            image_width=320, azimuth_steps=512, progress=False)


@pytest.fixture(scope="module")
def run(data, tmp_path_factory) -> Path:
    """A finished one-step pretraining run on D."""
    folder = tmp_path_factory.mktemp("pre") / "run"
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={folder}"]) == 0
    return folder


@pytest.fixture(scope="module")
def probe(data, run, tmp_path_factory) -> tuple[Path, Path]:
    """A finished one-step probe of a copy of the run's backbone.pt: (run folder, the pretrained file)."""
    base = tmp_path_factory.mktemp("probe")
    backbone = base / "backbone.pt"
    shutil.copy(run / "backbone.pt", backbone)
    folder = base / "run"
    assert main(["probe", str(data), *PROBE, "--pretrained", str(backbone), f"train.run_dir={folder}"]) == 0
    return folder, backbone


def _one_error(capsys) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err, err
    lines = [line for line in err.splitlines() if line.startswith("seal: error:")]
    assert len(lines) == 1, err
    return lines[0]


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("override, key", [("model.backbone.planes=[8,16,24,32,24,16,16,16]", "model.backbone.planes"),
                                           ("optim.lr=5", "optim.lr")])
def test_a_changed_key_is_refused_and_nothing_changes(override, key, run, capsys):
    before = _snapshot(run)
    assert main(["pretrain", "--resume", str(run), override, "train.max_steps=2"]) == 2
    line = _one_error(capsys)
    assert f"cannot change {key} (" in line and "train.max_steps" in line  # names the key and what may change
    assert _snapshot(run) == before
    assert main(["pretrain", "--resume", str(run)]) == 0  # a plain resume still works: "nothing to do"
    assert "nothing to do" in capsys.readouterr().out and _snapshot(run) == before


def test_resume_auto_with_new_values_after_a_finished_run_is_refused(data, run, capsys):
    before = _snapshot(run)
    assert main(["pretrain", str(data), *FAST, f"train.run_dir={run}", "optim.lr=0.5", "--resume", "auto"]) == 2
    line = _one_error(capsys)
    assert "cannot change optim.lr (" in line and " -> 0.5)" in line
    assert _snapshot(run) == before


def test_an_allowed_change_is_accepted_written_and_logged(data, run, tmp_path, capsys):
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    assert main(["pretrain", "--resume", str(copy), "train.max_steps=2", "train.log_every=2"]) == 0
    out = capsys.readouterr().out
    assert f"{copy / 'config.yaml'} updated: train.log_every 1 -> 2, train.max_steps 1 -> 2" in out
    assert "max_steps: 2" in (copy / "config.yaml").read_text()


def test_kinds_do_not_mix(data, run, probe, capsys):
    folder, _ = probe
    for command, target, kind in (("probe", run, "pretrain"), ("pretrain", folder, "probe")):
        before = _snapshot(target)
        assert main([command, *([str(data)] if command == "probe" else []), "--resume", str(target)]) == 2
        line = _one_error(capsys)
        assert f"a {kind} run, not a {command} run" in line and f"seal {kind} --resume {target}" in line
        assert _snapshot(target) == before


def test_resume_auto_passes_over_a_run_on_other_data(data, run, tmp_path, capsys, monkeypatch):
    """`seal pretrain K0 --resume auto` next to a run on D starts its own run instead of continuing D's."""
    monkeypatch.chdir(tmp_path)
    other = tmp_path / "runs" / "pretrain-20240101-000000"
    shutil.copytree(run, other)
    before = _snapshot(other)
    k0 = generate_dataset(tmp_path / "K0", sequences=1, frames=3, seed=8, cameras=1, image_width=320,
                          azimuth_steps=512, progress=False)
    assert main(["pretrain", str(k0), *FAST, "train.batch_size=1", "--resume", "auto"]) == 0
    out = capsys.readouterr().out
    assert f"passed over {Path('runs') / other.name} (trained on other data)" in out and "starting a new run" in out
    assert _snapshot(other) == before and len(list((tmp_path / "runs").glob("pretrain-*/backbone.pt"))) == 2


def test_a_dataset_of_the_same_name_elsewhere_is_refused(data, tmp_path, capsys, monkeypatch):
    """A run on the relative path D, resumed from another working directory that has a different D."""
    first, second = tmp_path / "a", tmp_path / "b"
    shutil.copytree(data, first / "D")
    generate_dataset(second / "D", sequences=1, frames=3, seed=8, cameras=1, image_width=320, azimuth_steps=512,
                     progress=False)
    monkeypatch.chdir(first)
    assert main(["pretrain", "D", *FAST, "train.run_dir=run", "optim.epochs=3"]) == 0
    monkeypatch.chdir(second)
    before = _snapshot(first / "run")
    assert main(["pretrain", "--resume", str(first / "run"), "train.max_steps=2"]) == 2
    line = _one_error(capsys)
    assert f"trained on {(first / 'D').resolve()}" in line and str((second / "D").resolve()) in line
    assert _snapshot(first / "run") == before


def test_a_probe_refuses_a_changed_pretrained_file(data, probe, tmp_path, capsys):
    folder, backbone = probe
    copy = tmp_path / "run"
    shutil.copytree(folder, copy)
    original = backbone.read_bytes()
    try:
        backbone.write_bytes(original + b"\0")  # retrained, or replaced, since the probe started
        before = _snapshot(copy)
        assert main(["probe", str(data), "--resume", str(copy), "train.max_steps=2"]) == 2
        line = _one_error(capsys)
        assert "pretrained file" in line and str(backbone) in line and "sha256" in line
        assert _snapshot(copy) == before
    finally:
        backbone.write_bytes(original)
    assert main(["probe", str(data), "--resume", str(copy), "train.max_steps=2"]) == 0  # the same file: it continues


def test_a_resume_checks_the_teacher_weights_by_their_hash(tmp_path):
    """The teacher file a pretraining run distils is part of what it was trained on: a resume with another file
    (or one changed in place, or weights where the run had none) is refused in one line; a moved copy is fine."""
    from seal.core.errors import ConfigError
    from seal.engine.runrecord import check_resume, pretrained_identity, write_record

    weights = tmp_path / "teacher.pth"
    weights.write_bytes(b"first weights")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.yaml").write_text(f"teacher:\n  weights: {weights}\n")
    write_record(run, "pretrain", {"data": [], "teacher": pretrained_identity(str(weights))})
    moved = tmp_path / "moved.pth"
    moved.write_bytes(b"first weights")
    assert check_resume(run, "pretrain", f"teacher:\n  weights: {moved}\n",
                        {"data": [], "teacher": pretrained_identity(str(moved))}) == {
        "teacher.weights": (str(weights), str(moved))}
    weights.write_bytes(b"other weights")
    with pytest.raises(ConfigError, match=r"^--resume .*: the run was trained on .*teacher.pth \(sha256 .*, this "
                                          r"teacher weights file is .*teacher.pth \(sha256"):
        check_resume(run, "pretrain", f"teacher:\n  weights: {weights}\n",
                     {"data": [], "teacher": pretrained_identity(str(weights))})
    none = tmp_path / "none"
    none.mkdir()
    (none / "config.yaml").write_text("teacher:\n  weights: null\n")
    write_record(none, "pretrain", {"data": [], "teacher": None})
    with pytest.raises(ConfigError, match=r"trained on none \(random initialisation\), this teacher weights file"):
        check_resume(none, "pretrain", f"teacher:\n  weights: {moved}\n",
                     {"data": [], "teacher": pretrained_identity(str(moved))})
