"""Issue 20, case 6 and the one-clear-line audit: every input fault (a damaged nuScenes table, a missing file,
calibration / poses / images that contradict each other or are not physically possible, an unwritable cache,
command-line words that are paths) ends in exactly one ``seal: error:`` line naming the file or key, exit status 2,
and nothing written; and an image replaced in place invalidates the superpixels computed from it."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from seal.cli.main import main


@pytest.fixture(scope="module")
def sources(tmp_path_factory) -> dict[str, Path]:
    """One tiny synthetic dataset per layout (SemanticKITTI, nuScenes tables), copied by each test before damage."""
    from seal.synth import generate_dataset

    base = tmp_path_factory.mktemp("faults")
    common = dict(sequences=1, frames=3, seed=7, cameras=1, image_width=320, azimuth_steps=512, progress=False)
    return {"kitti": generate_dataset(base / "kitti", **common),
            "nuscenes": generate_dataset(base / "nusc", layout="nuscenes", **common)}


@pytest.fixture
def copy(sources, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # a run folder, if anything made one, would land here

    def make(kind: str, name: str = "data") -> Path:
        return Path(shutil.copytree(sources[kind], tmp_path / name))
    return make


def _files(root: Path) -> set[Path]:
    return {p for p in root.rglob("*")}


def fails(capsys, root: Path, *argv: str, names: str) -> str:
    """Run seal; assert exit 2, one ``seal: error:`` line naming ``names``, nothing new under the test folder."""
    before = _files(root.parent)
    code = main(list(argv))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2, err
    assert len(err) == 1 and err[0].startswith("seal: error:"), err
    assert names in err[0], err[0]
    assert _files(root.parent) == before, sorted(map(str, _files(root.parent) - before))
    return err[0]


def _table(root: Path, name: str) -> Path:
    return root / "v1.0-mini" / f"{name}.json"


def _edit(root: Path, name: str, change) -> None:
    rows = json.loads(_table(root, name).read_text())
    _table(root, name).write_text(json.dumps(change(rows)))


def _drop(rows: list[dict], key: str, only: int | None = None) -> list[dict]:
    return [{k: v for k, v in r.items() if k != key} if only in (None, i) else r for i, r in enumerate(rows)]


# -- nuScenes tables in every way they can differ from what the devkit writes --------------------------------------

@pytest.mark.parametrize("table, change, says", [
    ("ego_pose", lambda r: _drop(r, "rotation"), "no record has the field 'rotation'"),
    ("ego_pose", lambda r: _drop(r, "translation", only=1), "record 1"),
    ("sample_data", lambda r: _drop(r, "is_key_frame"), "'is_key_frame'"),
    ("sample", lambda r: {"records": r}, "expected a JSON list of records"),
    ("ego_pose", lambda r: [dict(x, translation="abc") for x in r], "translation is 'abc'"),
    ("ego_pose", lambda r: [dict(x, translation=[float("nan")] * 3) for x in r], "3 finite numbers"),
    ("ego_pose", lambda r: [dict(x, rotation=[2.0, 0, 0, 0]) for x in r], "not a unit quaternion"),
    ("sensor", lambda r: r + r[:1], "appears twice"),
    ("calibrated_sensor", lambda r: [dict(x, camera_intrinsic=[[1, 2], [3, 4]]) if x["camera_intrinsic"] else x
                                     for x in r], "camera_intrinsic"),
    ("sample", lambda r: [dict(x, next=r[0]["token"]) if i == len(r) - 1 else x for i, x in enumerate(r)],
     "link in a loop"),
])
def test_nuscenes_table_faults(copy, capsys, table, change, says):
    root = copy("nuscenes")
    _edit(root, table, change)
    line = fails(capsys, root, "info", str(root), names=f"{table}.json")
    assert says in line


def test_nuscenes_lidar_file_missing(copy, capsys):
    root = copy("nuscenes")
    scan = sorted((root / "samples" / "LIDAR_TOP").iterdir())[0]
    scan.unlink()
    assert "point file not found" in fails(capsys, root, "info", str(root), names=scan.name)


def test_nuscenes_sweeps_without_folder(copy, capsys):
    root = copy("nuscenes")
    shutil.rmtree(root / "sweeps")
    assert "data.sweeps=true" in fails(capsys, root, "info", str(root), "data.sweeps=true", names="sweeps")


def test_nuscenes_without_tables_is_not_called_nuscenes_c(copy, capsys):
    root = copy("nuscenes")
    shutil.rmtree(root / "v1.0-mini")
    line = fails(capsys, root, "info", str(root), names=str(root))
    assert "without its tables" in line and "nuScenes-C" not in line


# -- images, calibration and poses that contradict each other or are not physically possible ------------------------

def _halve(folder: Path) -> Path:
    for path in sorted(folder.iterdir()):
        with Image.open(path) as img:
            small = img.resize((img.width // 2, img.height // 2))
        small.save(path)
    return sorted(folder.iterdir())[0]


def test_half_size_images_nuscenes(copy, capsys):
    root = copy("nuscenes")
    first = _halve(root / "samples" / "CAM_FRONT")
    line = fails(capsys, root, "superpixels", str(root), "--no-progress", names=first.name)
    assert "160x90 px" in line and "320x180" in line


def test_half_size_images_kitti(copy, capsys):
    root = copy("kitti")
    first = _halve(root / "sequences" / "00" / "image_2")
    assert "principal point" in fails(capsys, root, "superpixels", str(root), "--no-progress", names=first.name)


def _pose_line(root: Path, change) -> None:
    path = root / "sequences" / "00" / "poses.txt"
    lines = path.read_text().splitlines()
    lines[1] = " ".join(f"{v:.9g}" for v in change(np.array(lines[1].split(), float)))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("change, says", [
    (lambda v: v * np.nan, "NaN"),
    (lambda v: v * 0, "not invertible"),
    (lambda v: v * np.array([3, 3, 3, 1] * 3), "not a rigid transform"),
    (lambda v: v * np.array([-1, -1, -1, 1] + [1] * 8), "a reflection"),
])
def test_impossible_poses(copy, capsys, change, says):
    root = copy("kitti")
    _pose_line(root, change)
    line = fails(capsys, root, "info", str(root), names="poses.txt")
    assert "line 2" in line and says in line


def test_non_rigid_lidar_to_camera(copy, capsys):
    root = copy("kitti")
    path = root / "sequences" / "00" / "calib.txt"
    lines = [f"Tr: {' '.join(str(2 * float(v)) for v in ln.split(':')[1].split())}" if ln.startswith("Tr") else ln
             for ln in path.read_text().splitlines()]
    path.write_text("\n".join(lines) + "\n")
    assert "Tr is not a rigid transform" in fails(capsys, root, "info", str(root), names="calib.txt")


@pytest.mark.parametrize("text, says", [("0\nabc\n0.2\n", "not a column of numbers"),
                                        ("0\n0.2\n0.1\n", "goes back in time"), ("0\n0.1\n", "has 2 times")])
def test_bad_times(copy, capsys, text, says):
    root = copy("kitti")
    (root / "sequences" / "00" / "times.txt").write_text(text)
    assert says in fails(capsys, root, "info", str(root), names="times.txt")


# -- caches that cannot be written ---------------------------------------------------------------------------------

def test_cache_folder_cannot_be_created(copy, capsys, tmp_path):
    root = copy("kitti")
    (tmp_path / "file").write_text("not a folder")
    line = fails(capsys, root, "superpixels", str(root), "--no-progress", "--cache", str(tmp_path / "file" / "c"),
                 names=str(tmp_path / "file"))
    assert "--cache" in line


def test_read_only_dataset_and_unwritable_home(copy, capsys, tmp_path, monkeypatch):
    root = copy("kitti")
    (tmp_path / "home").write_text("a HOME that is not a writable folder")
    monkeypatch.setenv("SEAL_CACHE_HOME", str(tmp_path / "home" / ".cache" / "seal"))
    os.chmod(root, 0o555)  # no write bit: seal treats it as read-only even when run as root
    try:
        assert "SEAL_CACHE_HOME" in fails(capsys, root, "superpixels", str(root), "--no-progress",
                                          names=str(tmp_path / "home"))
    finally:
        os.chmod(root, 0o755)


# -- command-line words: paths are paths, zero-padded names stay names, errors name their layer ---------------------

@pytest.mark.parametrize("name", ["run=3", "${x}"])
def test_positional_path_is_a_path(copy, capsys, name):
    root = copy("kitti", name)
    assert main(["info", str(root)]) == 0, capsys.readouterr().err
    os.chdir(root.parent)
    assert main(["info", name]) == 0, capsys.readouterr().err


def test_zero_padded_sequence_names(copy, capsys):
    root = copy("kitti")
    assert main(["info", str(root), "data.sequences=[00]"]) == 0, capsys.readouterr().err
    from seal.core.schemas import SCHEMAS  # noqa: F401 - the schemas load_config validates
    from seal.core.settings import _keep_leading_zeros

    assert _keep_leading_zeros("data.sequences=[00, '01', 7]") == "data.sequences=['00', '01', 7]"
    assert _keep_leading_zeros("data.path=/d/00/x") == "data.path=/d/00/x"


def test_type_error_names_the_command_line(copy, capsys):
    root = copy("kitti")
    line = fails(capsys, root, "superpixels", str(root), "--config", "tiny", "superpixels.slic.n_segments=abc",
                 names="superpixels.slic.n_segments")
    assert "(command line)" in line and "pretrain_tiny" not in line


# -- a changed input invalidates what was computed from it ---------------------------------------------------------

def test_replaced_image_redoes_its_superpixels(copy):
    from seal.data import open_dataset
    from seal.superpixels.slic import SlicSuperpixels
    from seal.superpixels.stage import run_superpixels

    root = copy("kitti")
    method = SlicSuperpixels(n_segments=20, work_width=160)
    first = run_superpixels(open_dataset(root), method, root / "seal_cache", progress=False)
    assert first.done == 3 and not first.failed
    image = root / "sequences" / "00" / "image_2" / "000001.png"
    with Image.open(image) as img:
        flipped = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    flipped.save(image)  # replaced in place, same size
    again = run_superpixels(open_dataset(root), method, root / "seal_cache", progress=False)
    assert (again.changed, again.done, again.skipped) == (1, 1, 2)
    os.utime(image, ns=(1, 1))  # a touched (or copied) file with the same bytes is not redone
    third = run_superpixels(open_dataset(root), method, root / "seal_cache", progress=False)
    assert (third.changed, third.done, third.skipped) == (0, 0, 3)


@pytest.mark.parametrize("override", ["data.mix_weights=[-1]", "data.sequences=[]",
                                      "model.backbone.waffleiron.fov=[[1,2],[3,4,5]]",
                                      "model.backbone.waffleiron.dim_proj=[3]",
                                      "model.backbone.waffleiron.grid_shape=[[1,2,3]]",
                                      "model.backbone.waffleiron.input_features=[foo]"])
def test_list_options_are_checked(capsys, override):
    assert main(["config", "pretrain", override]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"seal: error: config key '{override.split('=')[0]}'"), err
