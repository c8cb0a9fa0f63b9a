"""Write synthetic driving sequences to disk, atomically and deterministically.

Two layouts: nuScenes (``layout="nuscenes"``, tables + samples/sweeps/lidarseg, see
`seal.synth.nuscenes_writer`) and, by default, SemanticKITTI (read back by the same reader as real data)::

    ROOT/seal_synth.json                     generator parameters + version (informative only)
    ROOT/sequences/NN/velodyne/NNNNNN.bin    float32 x y z intensity, LiDAR frame
    ROOT/sequences/NN/labels/NNNNNN.label    uint32: semantic id | instance id << 16
    ROOT/sequences/NN/image_2/NNNNNN.png     front camera (image_3.. = the other ring cameras)
    ROOT/sequences/NN/segments_2/NNNNNN.png  with ``segments=True``: the oracle segments of image_2 (16-bit PNG,
                                             see `seal.synth.segments`; segments_3.. for the other cameras)
    ROOT/sequences/NN/classes_2/NNNNNN.png   with ``segments=True``: the raw class id of every pixel of image_2
                                             (16-bit PNG, 0 = sky): what the oracle teachers read
    ROOT/sequences/NN/calib.txt              P0..P{k+1} (3x4), Tr (3x4, LiDAR -> cam0)
    ROOT/sequences/NN/poses.txt              cam0 pose at frame t in cam0 of frame 0 (3x4 per line)
    ROOT/sequences/NN/times.txt              seconds

Every random draw is seeded by (seed, sequence[, frame]), so a frame is identical whether or not the frames
before it were generated: an interrupted run resumes where it stopped (existing files are complete, because
each one is written to a temporary name and renamed).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from seal.core.atomic import write_text_atomic
from seal.core.errors import SealError
from seal.data.semantickitti_writer import SequenceWriter
from seal.synth import materials as M
from seal.synth.camera import CameraSpec, camera_rig, projection_matrices, render_camera
from seal.synth.lidar import LidarSpec, scan
from seal.synth.scene import Scene, build_scene
from seal.synth.segments import FORMAT as SEGMENTS_FORMAT
from seal.synth.segments import oracle_segments, pixel_classes

SYNTH_VERSION = 1
FRAME_PERIOD = 0.1  # seconds between frames (10 Hz)
META_NAME = "seal_synth.json"
LAYOUTS = ("semantickitti", "nuscenes")


@dataclass
class FrameData:
    """Everything generated for one frame (``ids``: per camera (labels, primitive) maps, if asked)."""

    points: np.ndarray
    labels: np.ndarray
    images: list[np.ndarray]
    ids: list[tuple[np.ndarray, np.ndarray]] = field(default_factory=list)


class SequenceGenerator:
    """The scene, sensors and poses of one sequence; renders any of its frames on demand."""

    def __init__(
        self,
        seed: int,
        sequence: int,
        frames: int,
        cameras: int = 1,
        image_width: int = 480,
        beams: int = 32,
        azimuth_steps: int = 1440,
    ) -> None:
        self.seed, self.sequence, self.frames = seed, sequence, frames
        self.scene: Scene = build_scene(seed, sequence, frames * FRAME_PERIOD)
        self.lidar = LidarSpec(beams=beams, azimuth_steps=azimuth_steps)
        self.rig: list[CameraSpec] = camera_rig(cameras, image_width)
        self.P, self.Tr = projection_matrices(self.rig)
        self._world_from_l0 = self.scene.ego_pose(0.0)

    def world_pose(self, frame: int) -> np.ndarray:
        """4x4 pose of the LiDAR at ``frame`` in the scene's world (road surface at z = 0)."""
        return self.scene.ego_pose(frame * FRAME_PERIOD)

    def lidar_pose(self, frame: int) -> np.ndarray:
        """4x4 pose of the LiDAR at ``frame`` in the LiDAR frame of frame 0."""
        return np.linalg.inv(self._world_from_l0) @ self.scene.ego_pose(frame * FRAME_PERIOD)

    def camera_pose(self, frame: int) -> np.ndarray:
        """4x4 pose of cam0 at ``frame`` in cam0 of frame 0 (what poses.txt stores)."""
        return self.Tr @ self.lidar_pose(frame) @ np.linalg.inv(self.Tr)

    def frame(self, frame: int, return_ids: bool = False, render: bool = True) -> FrameData:
        """Scan and render ``frame`` (``render=False``: the LiDAR scan only, no camera images)."""
        time = frame * FRAME_PERIOD
        prims = self.scene.primitives_at(time)
        pose = self.scene.ego_pose(time)
        rng = np.random.default_rng([self.seed, self.sequence, frame, 0x11DA])
        points, labels = scan(prims, self.scene.road, pose, self.lidar, rng)
        data = FrameData(points=points, labels=labels, images=[])
        for cam in self.rig if render else ():
            out = render_camera(prims, self.scene.road, pose, cam, return_ids=return_ids)
            if return_ids:
                img, lab, prim = out
                data.ids.append((lab, prim))
            else:
                img = out
            data.images.append(img)
        return data

    def write_meta(self, writer: SequenceWriter) -> None:
        """calib.txt (P0, P1 = cam0, then P2.. for the ring cameras, and Tr), poses.txt, times.txt."""
        writer.write_meta([self.P[0], self.P[0], *self.P], self.Tr, [self.camera_pose(t) for t in range(self.frames)],
                          [t * FRAME_PERIOD for t in range(self.frames)])


def _check_target(root: Path, meta: dict) -> dict | None:
    """Refuse to write into a folder that holds anything but this very dataset (same generator + params); return
    the metadata already there (None for a new or empty folder)."""
    if root.exists() and not root.is_dir():
        raise SealError(f"{root} exists and is not a folder; choose another --out")
    if not root.exists() or not any(root.iterdir()):
        return None
    meta_file = root / META_NAME
    if not meta_file.is_file():
        raise SealError(
            f"{root} is not empty and is not a seal synthetic dataset; choose an empty or new folder"
        )
    try:
        old = json.loads(meta_file.read_text())
    except (OSError, ValueError) as e:
        raise SealError(f"{meta_file} cannot be read ({e}); remove the folder or choose another --out") from e
    old_layout = old.get("layout", "semantickitti")
    if old.get("version") != meta["version"] or old.get("params") != meta["params"] or old_layout != meta["layout"]:
        diff = {
            k: (old.get("params", {}).get(k), v)
            for k, v in meta["params"].items()
            if old.get("params", {}).get(k) != v
        }
        if old_layout != meta["layout"]:
            diff["layout"] = (old_layout, meta["layout"])
        what = ", ".join(f"{k}: {a} -> {b}" for k, a, b in ((k, *ab) for k, ab in diff.items())) or "version"
        raise SealError(
            f"{root} already holds a different synthetic dataset ({what}); "
            "choose another --out or delete that folder"
        )
    return old


def _validate(sequences: int, frames: int, cameras: int, image_width: int, beams: int, steps: int) -> None:
    checks = [
        (sequences >= 1, "sequences must be >= 1"),
        (frames >= 1, "frames must be >= 1"),
        (1 <= cameras <= 6, "cameras must be between 1 and 6"),
        (image_width >= 16, "image_width must be >= 16"),
        (beams >= 1, "beams must be >= 1"),
        (steps >= 8, "azimuth_steps must be >= 8"),
    ]
    for ok, msg in checks:
        if not ok:
            raise SealError(msg)


def generate_dataset(
    out: str | Path,
    sequences: int = 4,
    frames: int = 20,
    seed: int = 0,
    cameras: int | None = None,
    image_width: int = 480,
    beams: int = 32,
    azimuth_steps: int = 1440,
    progress: bool = True,
    layout: str = "semantickitti",
    segments: bool = False,
) -> Path:
    """Generate ``sequences`` x ``frames`` synthetic frames under ``out`` and return the dataset root.

    ``layout`` is ``"semantickitti"`` or ``"nuscenes"``; both hold the same scenes, poses and labels for the same
    seed. ``cameras`` defaults to 1 (SemanticKITTI) or 6 (nuScenes, the six real camera channels).
    ``segments`` also writes each camera image's oracle segment map (``segments_K/NNNNNN.png``, see
    `seal.synth.segments`; SemanticKITTI layout only); the other files are the same with or without it.
    Deterministic: the same arguments give byte-identical files. Re-running into a folder that already holds
    the same dataset completes it (frames already on disk are skipped; with ``segments``, missing maps are
    added); any other non-empty folder is refused.
    """
    if layout not in LAYOUTS:
        raise SealError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    if segments and layout != "semantickitti":
        raise SealError(f"synth.segments: oracle segment maps are written in the SemanticKITTI layout only, not "
                        f"{layout!r} (use --layout semantickitti)")
    if cameras is None:
        cameras = 6 if layout == "nuscenes" else 1
    _validate(sequences, frames, cameras, image_width, beams, azimuth_steps)
    root = Path(out)
    params = dict(
        sequences=sequences,
        frames=frames,
        seed=seed,
        cameras=cameras,
        image_width=image_width,
        beams=beams,
        azimuth_steps=azimuth_steps,
    )
    rig = camera_rig(cameras, image_width)
    meta = {
        "generator": "seal.synth",
        "version": SYNTH_VERSION,
        "params": params,
        "layout": layout,
        "frame_period_s": FRAME_PERIOD,
        "lidar": asdict(LidarSpec(beams=beams, azimuth_steps=azimuth_steps)),
        "cameras": {f"image_{i + 2}": cam.name for i, cam in enumerate(rig)},
        "classes": {str(k): v for k, v in sorted(M.CLASS_NAMES.items())},
    }
    if layout == "nuscenes":
        from seal.synth import nuscenes_writer as NW

        meta.update(NW.describe(rig))
    old = _check_target(root, meta)
    if segments or (old or {}).get("segments"):
        meta["segments"] = SEGMENTS_FORMAT  # only then: without segments the file is what it always was
    root.mkdir(parents=True, exist_ok=True)
    write_text_atomic(root / META_NAME, json.dumps(meta, indent=2, sort_keys=True) + "\n")
    bar = _progress_bar(sequences * frames, progress)
    try:
        if layout == "nuscenes":
            gens = (SequenceGenerator(seed, seq, frames, cameras, image_width, beams, azimuth_steps)
                    for seq in range(sequences))
            NW.write_nuscenes(root, gens, FRAME_PERIOD, bar)
        else:
            for seq in range(sequences):
                _write_sequence(root / "sequences" / f"{seq:02d}", seed, seq, frames, params, bar, segments)
    finally:
        if bar is not None:
            bar.close()
    return root


def _write_sequence(seq_dir: Path, seed: int, seq: int, frames: int, params: dict, bar: object,
                    segments: bool = False) -> None:
    gen = SequenceGenerator(
        seed, seq, frames, params["cameras"], params["image_width"], params["beams"], params["azimuth_steps"]
    )
    writer = SequenceWriter(seq_dir.parent.parent, seq_dir.name)
    gen.write_meta(writer)
    for t in range(frames):
        stem = f"{t:06d}"
        cams = len(gen.rig)
        paths = writer.scan_paths(stem, cams) + (writer.segment_paths(stem, cams) + writer.class_paths(stem, cams)
                                                 if segments else [])
        if not all(p.is_file() for p in paths):
            data = gen.frame(t, return_ids=segments)
            maps = [oracle_segments(labels) for labels, _ in data.ids]
            classes = [pixel_classes(labels) for labels, _ in data.ids]
            writer.write_scan(stem, data.points, data.labels, images=data.images, segments=maps, classes=classes)
        if bar is not None:
            bar.update(1)


def _progress_bar(total: int, enabled: bool) -> object:
    if not enabled:
        return None
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm(total=total, desc="seal synth", unit="frame")
