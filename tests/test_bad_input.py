"""Each kind of broken input gets one clear seal error naming the file, never a numpy traceback."""

from __future__ import annotations

import numpy as np
import pytest

from seal.cli import main
from seal.core.errors import DataError
from seal.data import open_dataset
from tests.test_readers import write_sequence


@pytest.fixture()
def sequence(tmp_path):
    return write_sequence(tmp_path)["seq"], tmp_path


def test_truncated_scan(sequence):
    seq, root = sequence
    scan = seq / "velodyne" / "000001.bin"
    scan.write_bytes(scan.read_bytes()[:-5])
    ds = open_dataset(root)
    ds[0]  # other frames still load
    with pytest.raises(DataError, match="truncated") as err:
        ds[1]
    assert str(scan) in str(err.value)


def test_label_length_disagrees_with_scan(sequence):
    seq, root = sequence
    label = seq / "labels" / "000002.label"
    label.write_bytes(label.read_bytes()[:-8])
    with pytest.raises(DataError, match="98 labels but the scan has 100 points") as err:
        open_dataset(root)[2]
    assert str(label) in str(err.value)


def test_missing_image(sequence):
    seq, root = sequence
    image = seq / "image_3" / "000000.png"
    image.unlink()
    with pytest.raises(DataError, match="image file not found") as err:
        open_dataset(root)[0]
    assert str(image) in str(err.value)


def test_calibration_not_invertible(sequence):
    seq, root = sequence
    calib = seq / "calib.txt"
    lines = [ln if not ln.startswith("Tr:") else "Tr: " + " ".join(["0"] * 12) for ln in calib.read_text().splitlines()]
    calib.write_text("\n".join(lines))
    with pytest.raises(DataError, match="not invertible") as err:
        open_dataset(root)
    assert str(calib) in str(err.value)


def test_singular_camera_projection(sequence):
    seq, root = sequence
    calib = seq / "calib.txt"
    lines = [ln if not ln.startswith("P3:") else "P3: " + " ".join(["1"] * 12) for ln in calib.read_text().splitlines()]
    calib.write_text("\n".join(lines))
    with pytest.raises(DataError, match="P3 is not a valid camera projection"):
        open_dataset(root)


def test_nan_coordinates(sequence):
    seq, root = sequence
    scan = seq / "velodyne" / "000000.bin"
    pts = np.fromfile(scan, dtype=np.float32).reshape(-1, 4)
    pts[17, 1] = np.nan
    pts.tofile(scan)
    with pytest.raises(DataError, match="NaN or infinite coordinates .first at point 17") as err:
        open_dataset(root)[0]
    assert str(scan) in str(err.value)


def test_poses_count_disagrees(sequence):
    seq, root = sequence
    poses = seq / "poses.txt"
    poses.write_text("\n".join(poses.read_text().splitlines()[:2]))
    with pytest.raises(DataError, match="2 poses but the sequence has 3 scans"):
        open_dataset(root)


def test_unknown_layout(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="not a dataset layout seal knows"):
        open_dataset(tmp_path)
    with pytest.raises(DataError, match="dataset folder not found"):
        open_dataset(tmp_path / "absent")


def test_cli_prints_one_line_and_exits_2(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seal: error: ") and str(tmp_path) in err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
