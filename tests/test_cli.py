"""The command line on the real fixtures: help that teaches, info tables, pictures written atomically."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from seal.cli import build_parser, main


def test_help_lists_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for command in ("info", "show", "synth", "config", "examples:"):
        assert command in out


def test_info_nuscenes(nuscenes_root, capsys):
    assert main(["info", str(nuscenes_root)]) == 0
    out = capsys.readouterr().out
    for text in ("nuscenes", "34,688", "CAM_FRONT", "1600x900", "16 classes"):
        assert text in out


def test_info_semantickitti_shows_class_shares(semantickitti_tiny, capsys):
    assert main(["info", str(semantickitti_tiny)]) == 0
    out = capsys.readouterr().out
    assert "19 classes" in out and "building" in out and "50.0%" in out


def test_show_pairs_writes_png(nuscenes_root, tmp_path):
    out = tmp_path / "pairs.png"
    assert main(["show", "pairs", str(nuscenes_root), "--out", str(out)]) == 0
    image = np.asarray(Image.open(out))
    assert image.shape[1] > 1000 and image.std() > 10
    assert [p.name for p in tmp_path.iterdir()] == ["pairs.png"]  # no temp file left behind


def test_show_frame_out_of_range(nuscenes_root, tmp_path, capsys):
    assert main(["show", "frame", str(nuscenes_root), "--frame", "5", "--out", str(tmp_path / "f.png")]) == 2
    assert "--frame 5 is out of range" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_config_command_prints_keys(capsys):
    assert main(["config", "voxel.size=0.2"]) == 0
    assert "size: 0.2" in capsys.readouterr().out
