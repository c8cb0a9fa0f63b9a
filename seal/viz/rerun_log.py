"""3D recordings for the Rerun viewer: frames logged into an ``.rrd`` file to look at interactively
(`seal show frame --rerun`, `seal evaluate --rerun`). Needs the optional extra: ``pip install 'seal[viewer]'``.

The PNGs of `seal.viz.plot` are fixed views; a recording shows the points in 3D with the camera frusta and
images, frame after frame, each point layer switchable in the viewer (``rerun FILE.rrd``). Entity tree:

- ``world``: ViewCoordinates RIGHT_HAND_Z_UP (static);
- ``world/trajectory``: LineStrips3D, the LiDAR positions of the current sequence up to this frame (sequences
  with poses only);
- ``world/ego``: Transform3D, the frame's pose (LiDAR -> world);
- ``world/ego/lidar``: AnnotationContext of the label map's classes (static), so hovering names the class;
- ``world/ego/lidar/intensity``: Points3D coloured by intensity (turbo colormap);
- ``world/ego/lidar/ground_truth`` and ``.../prediction``: Points3D with class ids and the label map's colours
  (ignore: grey ``IGNORE_COLOR``);
- ``world/ego/lidar/error``: correct grey, wrong red, ignored dark (where both labels and a prediction exist);
- ``world/ego/lidar/superpoints``: Points3D by cached superpoint id (only when `seal superpoints` cached them);
- ``world/ego/cameras/NAME``: Transform3D camera -> LiDAR and Pinhole (K, width x height, RDF);
- ``world/ego/cameras/NAME/image``: the camera image, JPEG-compressed (``EncodedImage``);
- ``world/ego/cameras/NAME/superpixels``: SegmentationImage of the cached superpixel map (only when cached).

Timelines: ``frame`` (the dataset-wide frame index) and ``time`` (the frame's timestamp: absolute when it is a
Unix time, as in nuScenes, otherwise seconds from the sequence start as SemanticKITTI's times.txt). The file
is written next to its target and renamed at the end, so a failed run never leaves a half-written recording.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from seal.core.atomic import atomic_path
from seal.core.errors import ConfigError
from seal.core.frame import Camera, Dataset, Frame
from seal.core.labelmap import LabelMap
from seal.stages.cache import StageCache

IGNORE_COLOR = (110, 110, 110)  # points labelled (or predicted) ignore: visible on the viewer's dark background
ERROR_COLORS = {"correct": (170, 170, 170), "wrong": (230, 30, 30), "ignored": (60, 60, 60)}
SUPERPOINT_GROUND, SUPERPOINT_IGNORE = (153, 153, 153), (217, 217, 217)  # as `seal show superpoints` draws them
UNIX_TIME = 1e8  # timestamps above this (1973) are seconds since the epoch, below it seconds from the start
POINT_RADIUS = 1.5  # ui points: a LiDAR cloud stays readable at any zoom
JPEG_QUALITY = 90


def _rerun() -> Any:
    """The rerun module, or one line naming the extra that installs it."""
    try:
        import rerun
    except ImportError:
        raise ConfigError("3D recordings (--rerun) need the viewer extra: pip install 'seal[viewer]'") from None
    return rerun


def class_colors(label_map: LabelMap, ids: np.ndarray) -> np.ndarray:
    """RGB uint8 colour of each train id; ignore (0) is `IGNORE_COLOR` rather than the map's black."""
    colors = label_map.color_of(ids).copy()
    colors[np.asarray(ids) == 0] = IGNORE_COLOR
    return colors


def error_colors(labels: np.ndarray, prediction: np.ndarray) -> np.ndarray:
    """Correct points grey, wrong ones red, points labelled ignore dark: where the model errs, at a glance."""
    colors = np.empty((labels.shape[0], 3), np.uint8)
    colors[:] = ERROR_COLORS["correct"]
    colors[prediction != labels] = ERROR_COLORS["wrong"]
    colors[labels == 0] = ERROR_COLORS["ignored"]
    return colors


def intensity_colors(intensity: np.ndarray) -> np.ndarray:
    """Intensity in [0, 1] through the turbo colormap, RGB uint8."""
    from matplotlib import colormaps

    return (colormaps["turbo"](np.clip(intensity, 0.0, 1.0))[:, :3] * 255).round().astype(np.uint8)


def superpoint_colors(ids: np.ndarray) -> np.ndarray:
    """One colour per superpoint id (the palette of `seal show superpoints`), ground and ignored points grey."""
    from seal.geometry.segments import GROUND, IGNORE
    from seal.viz.superpixels import segment_palette

    palette = (segment_palette(int(max(ids.max(initial=0), 0)) + 1, seed=3) * 255).round().astype(np.uint8)
    colors = palette[np.maximum(ids, 0)]
    colors[ids == GROUND] = SUPERPOINT_GROUND
    colors[ids == IGNORE] = SUPERPOINT_IGNORE
    return colors


class FrameLogger:
    """Logs frames into one open recording; made by `recording`. ``frames`` and ``points`` count what it logged."""

    def __init__(self, rec: Any, dataset: Dataset, superpixels: StageCache | None,
                 superpoints: tuple[StageCache, int] | None, cameras: bool) -> None:
        self.rr, self.rec, self.dataset = _rerun(), rec, dataset
        self.superpixels, self.superpoints, self.cameras = superpixels, superpoints, cameras
        self.frames = self.points = 0
        self._track: tuple[str, list[np.ndarray]] = ("", [])
        self._shown: set[str] = set()  # entities the previous frame logged: cleared when this one has none
        self._now: set[str] = set()
        self._unix_time: bool | None = None

    def log_frame(self, index: int, frame: Frame, prediction: np.ndarray | None = None) -> None:
        """Log ``frame`` (dataset-wide ``index``) at its time: pose, point layers, cameras; ``prediction`` holds
        train ids of its points (evaluate)."""
        rr, rec = self.rr, self.rec
        if self.frames == 0:
            self._setup(frame, prediction is not None)
        rec.set_time("frame", sequence=index)
        if np.isfinite(frame.timestamp):
            if self._unix_time is None:
                self._unix_time = frame.timestamp > UNIX_TIME
            if self._unix_time:
                rec.set_time("time", timestamp=frame.timestamp)
            else:
                rec.set_time("time", duration=frame.timestamp)
        seq_index, local = self.dataset.locate(index)
        if self.dataset.sequences[seq_index].has_poses:
            name, track = self._track
            if name != frame.sequence:
                track = []
            track.append(frame.pose[:3, 3].astype(np.float32))
            self._track = (frame.sequence, track)
            self._log("world/trajectory", rr.LineStrips3D([np.stack(track)], colors=[(255, 200, 0)]))
        self._log("world/ego", rr.Transform3D(translation=frame.pose[:3, 3], mat3x3=frame.pose[:3, :3]))
        labels = frame.labels
        layers = {"intensity": (intensity_colors(frame.points[:, 3]), None)}
        if labels is not None:
            layers["ground_truth"] = (class_colors(self.dataset.label_map, labels), labels)
        if prediction is not None:
            layers["prediction"] = (class_colors(self.dataset.label_map, prediction), prediction)
            if labels is not None:
                layers["error"] = (error_colors(labels, prediction), None)
        ids = self._superpoints(seq_index, local, frame)
        if ids is not None:
            layers["superpoints"] = (superpoint_colors(ids), None)
        for layer, (colors, class_ids) in layers.items():
            self._log(f"world/ego/lidar/{layer}", rr.Points3D(frame.xyz, colors=colors, class_ids=class_ids,
                                                              radii=rr.Radius.ui_points(POINT_RADIUS)))
        if self.cameras:
            for camera in frame.cameras:
                self._log_camera(frame, camera)
        for gone in sorted(self._shown - self._now):  # else the viewer would show the last frame that had it
            rec.log(gone, rr.Clear(recursive=False))
        self._shown, self._now = self._now, set()
        self.frames += 1
        self.points += frame.num_points

    def _setup(self, frame: Frame, predicted: bool) -> None:
        """Static entities and a default layout: the 3D view with one point layer shown, the cameras beside."""
        rr, rec = self.rr, self.rec
        import rerun.blueprint as rrb

        label_map = self.dataset.label_map
        rec.log("world", rr.ViewCoordinates.RIGHT_HAND_Z_UP, static=True)
        classes = [rr.AnnotationInfo(id=0, label="ignore", color=IGNORE_COLOR)]
        classes += [rr.AnnotationInfo(id=i, label=name, color=tuple(int(c) for c in color))
                    for i, (name, color) in enumerate(zip(label_map.class_names, label_map.colors, strict=True), 1)]
        rec.log("world/ego/lidar", rr.AnnotationContext(classes), static=True)
        shown = "prediction" if predicted else "ground_truth" if frame.labels is not None else "intensity"
        hidden = {f"world/ego/lidar/{layer}": rrb.EntityBehavior(visible=False)
                  for layer in ("intensity", "ground_truth", "prediction", "error", "superpoints") if layer != shown}
        behind, ahead = frame.pose @ [-18.0, -10.0, 14.0, 1.0], frame.pose @ [8.0, 0.0, 0.0, 1.0]  # a chase view
        eye = rrb.EyeControls3D(position=behind[:3], look_target=ahead[:3], eye_up=[0, 0, 1])
        view = rrb.Spatial3DView(origin="world", name="3D", overrides=hidden, eye_controls=eye)
        names = [c.name for c in frame.cameras] if self.cameras else []
        if names:
            images = rrb.Vertical(*(rrb.Spatial2DView(origin=f"world/ego/cameras/{n}", name=n) for n in names[:6]))
            layout = rrb.Horizontal(view, images, column_shares=[3, 2])
        else:
            layout = view
        panels = [rrb.SelectionPanel(state="collapsed"), rrb.TimePanel(timeline="frame")]
        rec.send_blueprint(rrb.Blueprint(layout, *panels))

    def _log(self, path: str, *entries: Any) -> None:
        self.rec.log(path, *entries)
        self._now.add(path)

    def _log_camera(self, frame: Frame, camera: Camera) -> None:
        rr = self.rr
        path = f"world/ego/cameras/{camera.name}"
        cam_to_lidar = np.linalg.inv(camera.lidar_to_cam)
        self._log(path, rr.Transform3D(translation=cam_to_lidar[:3, 3], mat3x3=cam_to_lidar[:3, :3]),
                  rr.Pinhole(image_from_camera=camera.K, resolution=[camera.width, camera.height],
                             camera_xyz=rr.ViewCoordinates.RDF, image_plane_distance=4.0))
        if camera.image_path is not None or camera._image is not None:
            self._log(f"{path}/image", rr.Image(camera.image).compress(jpeg_quality=JPEG_QUALITY))
        if self.superpixels is not None:
            from seal.superpixels import load_segments
            from seal.superpixels.stage import superpixel_path

            segments = superpixel_path(self.superpixels, frame.id, camera.name)
            if segments.is_file():
                self._log(f"{path}/superpixels", rr.SegmentationImage(load_segments(segments), opacity=0.4))

    def _superpoints(self, seq_index: int, local: int, frame: Frame) -> np.ndarray | None:
        """Cached superpoint ids of the frame: of the pair it starts, else of the pair it ends; None if uncached."""
        if self.superpoints is None:
            return None
        from seal.superpoints.stage import load_pair, superpoint_path

        cache, gap = self.superpoints
        seq = self.dataset.sequences[seq_index]
        path = superpoint_path(cache, frame.id)
        if path.is_file():
            return load_pair(path, first_points=frame.num_points).first
        if local >= gap:
            path = superpoint_path(cache, seq.frame_id(local - gap))
            if path.is_file():
                return load_pair(path, second_points=frame.num_points).second
        return None


@contextlib.contextmanager
def recording(path: str | Path, dataset: Dataset, superpixels: StageCache | None = None,
              superpoints: tuple[StageCache, int] | None = None, cameras: bool = True) -> Iterator[FrameLogger]:
    """A `FrameLogger` writing to ``path`` (an ``.rrd``); the file appears only when the block succeeds.

    ``superpixels`` / ``superpoints`` (the stage cache, and the pair gap) name the caches whose maps are logged
    when present; nothing is computed. ``cameras=False`` leaves the camera images out."""
    rr = _rerun()
    path = Path(path)
    if path.suffix != ".rrd":
        raise ConfigError(f"--rerun {path}: a Rerun recording is an .rrd file (e.g. --rerun frame.rrd)")
    with atomic_path(path) as tmp:
        rec = rr.RecordingStream(application_id="seal")
        rec.save(tmp)
        try:
            yield FrameLogger(rec, dataset, superpixels, superpoints, cameras)
            rec.flush()
        finally:
            rec.disconnect()
