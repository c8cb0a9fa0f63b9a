"""The one data model: every dataset reader yields `Frame`s grouped in `Sequence`s inside a `Dataset`.

Conventions (the same for every dataset, so nothing downstream knows where a frame came from):
- points are float32 ``x y z intensity`` in the LiDAR frame, metres, intensity scaled to [0, 1];
- ``labels`` are *train* ids (0 = ignore) after the dataset's label map; ``raw_labels`` keep the file's ids;
- a camera's ``lidar_to_cam`` maps LiDAR coordinates to the camera frame (x right, y down, z forward) and
  ``K`` maps camera coordinates to pixels: ``(u, v) = (K @ p)[:2] / p_z`` with u the column and v the row;
- ``pose`` maps LiDAR coordinates of this frame to a world frame shared by the frames of one sequence.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Callable, Iterator
from collections.abc import Sequence as SequenceABC
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.atomic import write_bytes_atomic
from seal.core.errors import DataError
from seal.core.labelmap import LabelMap


@dataclass
class Camera:
    """One calibrated camera image of a frame; the pixels load lazily on first access of ``image``."""

    name: str
    K: np.ndarray
    lidar_to_cam: np.ndarray
    width: int
    height: int
    image_path: Path | None = None
    timestamp: float | None = None
    _image: np.ndarray | None = field(default=None, repr=False)

    @property
    def image(self) -> np.ndarray:
        """The RGB image as an HxWx3 uint8 array."""
        if self._image is None:
            if self.image_path is None:
                raise DataError(f"<camera {self.name}>", "has no image file and no pixels")
            from seal.core.io import read_image

            self._image = read_image(self.image_path, expect_size=(self.width, self.height))
        return self._image

    @image.setter
    def image(self, value: np.ndarray) -> None:
        self._image = value

    @property
    def projection(self) -> np.ndarray:
        """The 3x4 matrix taking homogeneous LiDAR points to homogeneous pixels."""
        return self.K @ self.lidar_to_cam[:3, :]


@dataclass
class Frame:
    """One synchronised LiDAR sweep with its cameras, pose and (optional) labels."""

    id: str
    points: np.ndarray
    pose: np.ndarray
    timestamp: float
    cameras: list[Camera] = field(default_factory=list)
    labels: np.ndarray | None = None
    raw_labels: np.ndarray | None = None
    instances: np.ndarray | None = None
    rings: np.ndarray | None = None
    sequence: str = ""
    index: int = 0

    @property
    def num_points(self) -> int:
        return int(self.points.shape[0])

    @property
    def xyz(self) -> np.ndarray:
        return self.points[:, :3]

    @property
    def has_labels(self) -> bool:
        return self.labels is not None


class Sequence(SequenceABC):
    """An ordered run of frames sharing one world frame (a SemanticKITTI sequence, a nuScenes scene)."""

    def __init__(
        self,
        name: str,
        frame_names: list[str],
        load: Callable[[int], Frame],
        point_count: Callable[[int], int],
        has_labels: bool,
        has_poses: bool,
        camera_names: list[str],
        frame_cameras: Callable[[int], list[str]] | None = None,
    ) -> None:
        self.name = name
        self.frame_names = frame_names
        self._load = load
        self._point_count = point_count
        self.has_labels = has_labels
        self.has_poses = has_poses
        self.camera_names = camera_names
        self._frame_cameras = frame_cameras

    def __len__(self) -> int:
        return len(self.frame_names)

    def __getitem__(self, index: int) -> Frame:  # type: ignore[override]
        if not -len(self) <= index < len(self):
            raise IndexError(f"sequence {self.name} has {len(self)} frames, asked for frame {index}")
        return self._load(index % len(self))

    def __iter__(self) -> Iterator[Frame]:
        for i in range(len(self)):
            yield self[i]

    def point_count(self, index: int) -> int:
        """Number of points of frame ``index``, cheaply (from the file size where the format allows)."""
        return self._point_count(index)

    def cameras_of(self, index: int) -> list[str]:
        """Names of the cameras frame ``index`` carries, without loading it."""
        return self._frame_cameras(index) if self._frame_cameras else list(self.camera_names)

    def frame_id(self, index: int) -> str:
        """The stable id frame ``index`` will have, without loading it."""
        return f"{self.name}/{self.frame_names[index]}"

    def pair(self, index: int, gap: int = 1) -> tuple[Frame, Frame]:
        """Frames (t, t+gap) for the temporal terms; the sequence must carry poses."""
        if not self.has_poses:
            raise DataError(self.name, "has no ego poses, so frames cannot be paired in time",
                            "add poses.txt (SemanticKITTI layout) or use a dataset with poses")
        return self[index], self[index + gap]


class DatasetFormat:
    """One on-disk dataset format. Subclasses fill in what their layout knows."""

    name: str = ""                      # the kind, e.g. "semantickitti"
    title: str = ""                     # the dataset's name as its authors write it, e.g. "SemanticKITTI"
    layout: str = ""                    # what the folder looks like, one line
    needs: str = ""                     # what must be on disk (downloads, optional extras), one line
    detection: str = "from its layout"  # how `open_dataset` recognises it without kind=
    label_map: str = ""                 # packaged label map it uses by default
    split_note: str = ""                # the validation split and few-shot rule it applies, one line
    robustness_baseline: str | None = None  # key of the packaged Robo3D baseline (seal.evaluation)
    miou_convention: str = "absent-excluded"  # its benchmark's rule for a class absent from ground truth and
    # predictions: absent-as-zero | absent-excluded | absent-as-one (seal.evaluation.metrics.MIOU_CONVENTIONS)
    cameras: bool = True                # whether frames carry camera images
    poses: bool = True                  # whether sequences carry ego poses
    detect_priority: int = 50           # `seal.data.detect_kind` tries lower first: layouts with a marker of
    # their own (< 50) before a plugin's (the default) and before plain SemanticKITTI (80), KITTI object last (90)

    def detect(self, root: Path) -> bool:
        """Whether ``root`` holds this layout."""
        raise NotImplementedError

    def open(self, root: Path, **options: Any) -> Dataset:
        """Read the dataset at ``root`` (options: label_map, version, sweeps ... as the format supports)."""
        raise NotImplementedError

    def prediction_file(self, folder: Path, frame_id: str) -> tuple[Path, np.dtype]:
        """Where a frame's predicted raw ids go under ``folder``, and their on-disk dtype."""
        sequence, name = frame_id.rsplit("/", 1)
        return folder / "sequences" / sequence / "predictions" / f"{name}.label", np.dtype("<u4")

    def write_prediction(self, folder: Path, frame_id: str, raw_ids: np.ndarray) -> Path:
        """Write one frame's predictions (raw ids of this format's label map) atomically; returns the file."""
        path, dtype = self.prediction_file(folder, frame_id)
        write_bytes_atomic(path, np.asarray(raw_ids).astype(dtype).tobytes())
        return path

    def official_split(self, dataset: Dataset, fraction: int) -> tuple[list[int], list[str]] | None:
        """(training frame indices of the few-shot fraction, validation sequence names) from the format's
        official lists, or None when none apply to this dataset."""
        return None

    def rule_split(self, dataset: Dataset, fraction: int) -> list[int]:
        """Training frame indices of the few-shot fraction by the every-k-th rule over this dataset's frames."""
        raise NotImplementedError

    def open_released(self, clean: Dataset, folder: Path) -> Dataset:
        """A released corrupted copy of ``clean`` (one Robo3D corruption/severity folder), labelled like it."""
        raise DataError(folder, f"the {self.name} format has no released corrupted sets (Robo3D releases "
                                "SemanticKITTI-C and nuScenes-C)", "evaluate without evaluate.robustness_root")


@dataclass
class Dataset:
    """A set of sequences read from one folder, with the label map that turns raw ids into train ids."""

    root: Path
    kind: str
    sequences: list[Sequence]
    label_map: LabelMap
    notes: list[str] = field(default_factory=list)
    format: DatasetFormat | None = field(default=None, repr=False)  # what its on-disk layout knows

    def __len__(self) -> int:
        return sum(len(s) for s in self.sequences)

    def __getitem__(self, index: int) -> Frame:
        seq, local = self.locate(index)
        return self.sequences[seq][local]

    def __iter__(self) -> Iterator[Frame]:
        for seq in self.sequences:
            yield from seq

    @property
    def sequence_starts(self) -> list[int]:
        """The dataset-wide index of each sequence's first frame (frames are numbered sequence after sequence):
        frame ``i`` of sequence ``s`` is frame ``sequence_starts[s] + i`` of the dataset."""
        starts, start = [], 0
        for seq in self.sequences:
            starts.append(start)
            start += len(seq)
        return starts

    def locate(self, index: int) -> tuple[int, int]:
        """(sequence index, frame index within it) of the dataset-wide frame ``index``."""
        total = len(self)
        if not -total <= index < total:
            raise IndexError(f"{self.root}: the dataset has {total} frames, asked for frame {index}")
        index %= total
        starts = self.sequence_starts
        s = bisect_right(starts, index) - 1  # the last sequence starting at or before it (empty ones skipped)
        return s, index - starts[s]

    @property
    def has_labels(self) -> bool:
        return any(s.has_labels for s in self.sequences)
