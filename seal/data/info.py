"""`seal info`: what a dataset holds, in a short table, without reading every scan."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from seal.core.frame import Dataset

MAX_SEQUENCE_ROWS = 20


@dataclass
class DatasetSummary:
    """Counts that describe a dataset; point counts come from file sizes, class shares from a sample."""

    root: str
    kind: str
    sequences: list[dict] = field(default_factory=list)
    frames: int = 0
    points: tuple[int, int, int] = (0, 0, 0)
    cameras: list[str] = field(default_factory=list)
    image_size: tuple[int, int] | None = None
    label_map: str = ""
    num_classes: int = 0
    has_labels: bool = False
    has_poses: bool = False
    class_share: dict[str, float] = field(default_factory=dict)
    sampled_frames: int = 0
    notes: list[str] = field(default_factory=list)


def summarize(dataset: Dataset, label_sample: int = 20) -> DatasetSummary:
    """Summarise ``dataset``; class shares are measured on up to ``label_sample`` evenly spaced frames."""
    counts_all: list[int] = []
    summary = DatasetSummary(root=str(dataset.root), kind=dataset.kind, label_map=dataset.label_map.name,
                             num_classes=dataset.label_map.num_classes, has_labels=dataset.has_labels,
                             notes=list(dataset.notes))
    for seq in dataset.sequences:
        counts = [seq.point_count(i) for i in range(len(seq))]
        counts_all += counts
        summary.sequences.append({"name": seq.name, "frames": len(seq), "median_points": int(np.median(counts)),
                                  "cameras": len(seq.camera_names), "labels": seq.has_labels,
                                  "poses": seq.has_poses})
        summary.cameras = summary.cameras or list(seq.camera_names)
    summary.frames = len(counts_all)
    summary.has_poses = all(s.has_poses for s in dataset.sequences)
    if counts_all:
        summary.points = (int(np.min(counts_all)), int(np.median(counts_all)), int(np.max(counts_all)))
    if summary.frames:
        first = dataset[0]
        if first.cameras:
            summary.image_size = (first.cameras[0].width, first.cameras[0].height)
    if dataset.has_labels and label_sample > 0:
        picks = np.unique(np.linspace(0, summary.frames - 1, min(label_sample, summary.frames)).astype(int))
        hist = np.zeros(dataset.label_map.num_classes + 1, dtype=np.int64)
        for index in picks:
            labels = dataset[int(index)].labels
            if labels is not None:
                hist += np.bincount(labels, minlength=hist.shape[0])[: hist.shape[0]]
        total = max(int(hist.sum()), 1)
        summary.class_share = {dataset.label_map.name_of(i): hist[i] / total for i in range(hist.shape[0])
                               if hist[i] > 0}
        summary.sampled_frames = len(picks)
    return summary


def render(summary: DatasetSummary) -> None:
    """Print the summary as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = Console()
    table = Table(title=f"{summary.root}", show_header=False, title_justify="left")
    table.add_column("what", style="bold")
    table.add_column("value")
    lo, med, hi = summary.points
    rows = [
        ("layout", summary.kind + (f" ({'; '.join(summary.notes)})" if summary.notes else "")),
        ("sequences", str(len(summary.sequences))),
        ("frames", str(summary.frames)),
        ("points per frame", f"min {lo:,}  median {med:,}  max {hi:,}"),
        ("cameras", f"{len(summary.cameras)}: {', '.join(summary.cameras)}" if summary.cameras else "none"),
        ("image size", f"{summary.image_size[0]}x{summary.image_size[1]}" if summary.image_size else "-"),
        ("label map", f"{summary.label_map} ({summary.num_classes} classes + ignore)"),
        ("labels", "yes" if summary.has_labels else "no"),
        ("ego poses", "yes" if summary.has_poses else "no (single frames; no temporal pairs)"),
    ]
    for row in rows:
        table.add_row(*row)
    console.print(table)
    seq_table = Table(title="sequences", title_justify="left")
    for col in ("sequence", "frames", "median points", "cameras", "labels", "poses"):
        seq_table.add_column(col, justify="right" if col in ("frames", "median points", "cameras") else "left")
    for seq in summary.sequences[:MAX_SEQUENCE_ROWS]:
        seq_table.add_row(seq["name"], str(seq["frames"]), f"{seq['median_points']:,}", str(seq["cameras"]),
                          "yes" if seq["labels"] else "no", "yes" if seq["poses"] else "no")
    if len(summary.sequences) > MAX_SEQUENCE_ROWS:
        seq_table.add_row(f"... {len(summary.sequences) - MAX_SEQUENCE_ROWS} more", "", "", "", "", "")
    console.print(seq_table)
    if summary.class_share:
        cls = Table(title=f"class shares ({summary.sampled_frames} frames sampled)",
                    title_justify="left")
        cls.add_column("class")
        cls.add_column("share", justify="right")
        for name, share in sorted(summary.class_share.items(), key=lambda kv: -kv[1]):
            cls.add_row(name, f"{100 * share:.1f}%")
        console.print(cls)
