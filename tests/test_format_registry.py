"""The dataset-format registry: detection by priority (not import or name order), a plugin format without a
``name`` of its own, one object per kind, composition instead of undone inheritance, and where sequences start."""

from __future__ import annotations

from importlib import metadata
from pathlib import Path

import numpy as np
import pytest

import seal.core.registry as registry_module
from seal.core.errors import ConfigError, DataError
from seal.core.frame import Dataset, DatasetFormat, Frame, Sequence
from seal.core.labelmap import load_label_map
from seal.data import KINDS, detect_kind, get_format, open_dataset
from seal.data.formats import FORMATS, ScribbleKittiFormat, SemanticKittiFormat, detection_order

LEGACY_ORDER = ["nuscenes", "waymo", "pandaset", "semantickitti-c", "nuscenes-c", "scribblekitti", "semanticstf",
                "rellis3d", "daps3d", "synth4d", "synlidar", "semanticposs", "semantickitti", "kitti-object"]


class NamelessFormat(DatasetFormat):
    """A plugin's format that sets no ``name``: the registered one is its name."""

    title, layout, label_map = "Nameless drives", "nameless.txt + NNNNNN.npy", "semantickitti"
    cameras = poses = False

    def detect(self, root: Path) -> bool:
        return (root / "nameless.txt").is_file()

    def open(self, root: Path, **options) -> Dataset:
        scans = sorted(root.glob("*.npy"))

        def load(i: int) -> Frame:
            return Frame(f"drive/{scans[i].stem}", np.load(scans[i]), np.eye(4), float(i), sequence="drive", index=i)

        seq = Sequence("drive", [s.stem for s in scans], load, lambda i: len(np.load(scans[i])), False, False, [])
        return Dataset(root, self.name, [seq], load_label_map(self.label_map))


@pytest.fixture
def plugin(monkeypatch):
    """``nameless = "tests.test_format_registry:NamelessFormat"`` in the ``seal.formats`` entry-point group."""
    ep = metadata.EntryPoint("nameless", f"{__name__}:NamelessFormat", "seal.formats")
    real = registry_module.metadata.entry_points

    def entry_points(**selection):
        return [ep] if selection.get("group") == "seal.formats" else real(**selection)

    monkeypatch.setattr(registry_module.metadata, "entry_points", entry_points)
    FORMATS.refresh()
    yield "nameless"
    monkeypatch.undo()
    FORMATS.refresh()


def test_detection_order_is_the_priorities_and_keeps_the_built_in_order():
    formats, broken = detection_order()
    assert [f.name for f in formats] == LEGACY_ORDER and not broken
    assert list(KINDS) == list(FORMATS) == sorted(LEGACY_ORDER)  # listing is by name, detection by priority
    priorities = [f.detect_priority for f in formats]
    assert priorities == sorted(priorities) and len(set(priorities)) == len(priorities)
    assert max(priorities[:-2]) < DatasetFormat.detect_priority < get_format("semantickitti").detect_priority


def test_one_object_per_kind_named_by_the_registry():
    for kind in FORMATS:
        fmt = get_format(kind)
        assert fmt is get_format(kind) and fmt.name == kind and isinstance(fmt, FORMATS.get(kind))
    with pytest.raises(ConfigError, match=r"unknown dataset kind 'nope' \(data.kind / --kind\); choose one of "
                                          r"daps3d, .*waymo$"):
        get_format("nope")


def test_scribblekitti_composes_semantickitti_rather_than_inheriting_it(tmp_path):
    assert not issubclass(ScribbleKittiFormat, SemanticKittiFormat)
    scribble, kitti = get_format("scribblekitti"), get_format("semantickitti")
    assert scribble.robustness_baseline is None and kitti.robustness_baseline == "semantickitti"
    root = tmp_path / "scribbles"
    for i in range(3):
        path = root / "sequences" / "00" / "velodyne" / f"{i:06d}.bin"
        path.parent.mkdir(parents=True, exist_ok=True)
        np.zeros((2, 4), np.float32).tofile(path)
    (root / "sequences" / "00" / "scribbles").mkdir()
    ds = open_dataset(root)
    assert ds.kind == "scribblekitti" and ds.format is scribble
    assert scribble.official_split(ds, 25) == kitti.official_split(ds, 25) is None  # not the official frames
    with pytest.raises(DataError, match="no released corrupted sets"):
        scribble.open_released(ds, tmp_path)


def test_a_plugin_without_a_name_is_detected_opened_and_listed(plugin, tmp_path):
    from seal.cli.datasets import dataset_rows

    root = tmp_path / "drives"
    root.mkdir()
    (root / "nameless.txt").write_text("x\n")
    for i in range(2):
        np.save(root / f"{i:06d}.npy", np.zeros((5, 4), np.float32))
    assert plugin in FORMATS and FORMATS.names()[-1] == plugin
    assert detect_kind(root) == plugin
    ds = open_dataset(root)
    assert ds.format.name == plugin == ds.kind and len(ds) == 2
    names = [f.name for f in detection_order()[0]]
    assert names.index(plugin) == names.index("semantickitti") - 1  # the default: after every built-in marker
    row = next(r for r in dataset_rows() if r.kind == plugin)
    assert row.source == f"{__name__}:NamelessFormat" and row.title == "Nameless drives" and row.classes == 19


def test_a_broken_plugin_does_not_stop_detection(monkeypatch, tmp_path):
    ep = metadata.EntryPoint("broken", "no_such_module_anywhere:Format", "seal.formats")
    real = registry_module.metadata.entry_points
    monkeypatch.setattr(registry_module.metadata, "entry_points",
                        lambda **s: [ep] if s.get("group") == "seal.formats" else real(**s))
    FORMATS.refresh()
    try:
        kitti = tmp_path / "kitti"
        (kitti / "sequences" / "00" / "velodyne").mkdir(parents=True)
        assert detect_kind(kitti) == "semantickitti"
        with pytest.raises(DataError, match="not tried: .*broken.*failed to load"):
            detect_kind(tmp_path / "kitti" / "sequences")
    finally:
        monkeypatch.undo()
        FORMATS.refresh()


def _sequence(name: str, n: int) -> Sequence:
    return Sequence(name, [f"{i:06d}" for i in range(n)], lambda i: i, lambda i: 0, False, False, [])


def test_sequence_starts_and_locate_skip_empty_sequences():
    ds = Dataset(Path("."), "x", [_sequence("a", 3), _sequence("b", 0), _sequence("c", 2), _sequence("d", 0)],
                 load_label_map("semantickitti"))
    assert ds.sequence_starts == [0, 3, 3, 5]
    assert [ds.locate(i) for i in range(5)] == [(0, 0), (0, 1), (0, 2), (2, 0), (2, 1)]
    assert ds.locate(-1) == (2, 1)
    with pytest.raises(IndexError):
        ds.locate(5)
